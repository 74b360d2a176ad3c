#include "loyalty/recon/protocol.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <set>

#include "wire.h"

namespace loyalty::recon {
namespace {

Status Malformed(std::string what) {
  return Status::Error(ErrorCode::kBadRequest, "reconciliation: " + what);
}

// Approximate wire size of a coded symbol, for choosing between symbols and listing.
constexpr uint64_t kSymbolWireBytes = 35;
constexpr uint64_t kItemWireBytes = kKeySize;
// Symbols asked for per difference of the upper estimate: peeling needs ~1.4 on average and
// up to ~1.8 for small d at the 99th percentile.
constexpr double kSymbolsPerDifference = 1.6;
constexpr uint64_t kSymbolSlack = 12;
constexpr double kLogLikelihoodSlack = 1.0;
constexpr size_t kOwnChunk = 4096;

// Checks version and type; leaves the reader after the header.
Status ReadHeader(wire::Reader* r, uint8_t* type) {
  uint8_t version;
  if (!r->Byte(&version) || !r->Byte(type)) return Malformed("truncated header");
  if (version != wire::kVersion) return Malformed("unsupported version " + std::to_string(version));
  return Status::Ok();
}

std::vector<uint64_t> ProbeIndices(uint64_t limit) {
  std::vector<uint64_t> p;
  wire::ForEachProbe(limit, [&](uint64_t i) { p.push_back(i); });
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Responder

Result<std::string> Responder::Reply(std::string_view msg) const {
  wire::Reader r(msg);
  uint8_t type;
  if (Status s = ReadHeader(&r, &type); !s.ok()) return s;
  const uint64_t m = store_.stored_symbols();
  wire::Writer w;
  w.Byte(wire::kVersion);

  switch (type) {
    case wire::kHello: {
      uint64_t count;
      std::array<uint8_t, 16> fp;
      if (!r.Varint(&count) || !r.Bytes(fp.data(), fp.size()) || !r.done())
        return Malformed("bad HELLO");
      std::vector<Symbol> mine;
      if (Status s = store_.ReadSymbols(0, std::min<uint64_t>(m, 1), &mine); !s.ok()) return s;
      if (mine.empty()) return Status::Error(ErrorCode::kInternal, "store keeps no symbols");
      if (mine[0].count >= 0 && static_cast<uint64_t>(mine[0].count) == count &&
          RootFingerprint(mine[0]) == fp) {
        w.Byte(wire::kInSync);
        return w.Take();
      }
      const uint64_t n = std::min(wire::kFirstSymbols, m);
      const std::vector<uint64_t> probes = ProbeIndices(m);
      const uint64_t need = std::max(n, probes.empty() ? 0 : probes.back() + 1);
      if (Status s = store_.ReadSymbols(0, need, &mine); !s.ok()) return s;
      w.Byte(wire::kDiffer);
      w.Varint(m);
      w.Varint(n);
      for (uint64_t i = 0; i < n; ++i) w.Sym(mine[i]);
      w.Varint(probes.size());
      for (uint64_t p : probes) w.Le16(static_cast<uint16_t>(mine[p].check));
      return w.Take();
    }
    case wire::kGetSymbols: {
      uint64_t begin, end;
      if (!r.Varint(&begin) || !r.Varint(&end) || !r.done()) return Malformed("bad GET_SYMBOLS");
      if (begin >= end || end > m || end - begin > wire::kMaxSymbolsPerMessage) {
        return Malformed("symbol range out of bounds");
      }
      std::vector<Symbol> mine;
      if (Status s = store_.ReadSymbols(begin, end, &mine); !s.ok()) return s;
      w.Byte(wire::kSymbols);
      w.Varint(begin);
      w.Varint(mine.size());
      for (const Symbol& s : mine) w.Sym(s);
      return w.Take();
    }
    case wire::kGetItems: {
      uint8_t has_after;
      ElementId after;
      uint64_t limit;
      if (!r.Byte(&has_after) || has_after > 1) return Malformed("bad GET_ITEMS");
      if (has_after && !r.Bytes(after.data(), kIdSize)) return Malformed("bad GET_ITEMS");
      if (!r.Varint(&limit) || !r.done()) return Malformed("bad GET_ITEMS");
      if (limit == 0 || limit > wire::kMaxItemsPerMessage)
        return Malformed("item limit out of bounds");
      std::vector<Element> items;
      bool more = false;
      if (Status s = store_.ListElements(has_after ? &after : nullptr, limit, &items, &more);
          !s.ok())
        return s;
      w.Byte(wire::kItems);
      w.Varint(items.size());
      for (const Element& e : items) {
        w.Bytes(e.id.data(), kIdSize);
        w.Bytes(e.tag.data(), kTagSize);
      }
      w.Byte(more ? 1 : 0);
      return w.Take();
    }
    default:
      return Malformed("unknown message type " + std::to_string(type));
  }
}

// ---------------------------------------------------------------------------------------
// Initiator

struct Initiator::Decoder {
  struct Probe {
    uint64_t index;
    uint16_t residual;  // low 16 bits of (ours − theirs − decoded) at that symbol
  };

  std::vector<Symbol> mine;  // our symbols [0, m_eff)
  uint64_t m_eff = 0;
  uint64_t their_count = 0;
  std::vector<Symbol> diff;  // residual difference, symbols [0, diff.size())
  std::vector<std::pair<Element, int64_t>> decoded;
  std::set<Element> seen;
  std::vector<Probe> probes;
  uint64_t requested_end = 0;
  int symbol_rounds = 0;

  // Listing state.
  std::optional<ElementId> their_last;
  std::vector<Element> own_buf;
  size_t own_pos = 0;
  bool own_more = true;
  std::optional<ElementId> own_after;

  // Removes decoded elements from symbols [from, diff.size()) (from = 0: all) and probes.
  void Subtract(const Element& e, uint64_t check, int64_t sign, std::deque<uint64_t>* queue) {
    const uint64_t s = diff.size();
    size_t pi = 0;
    const uint64_t last_probe = probes.empty() ? 0 : probes.back().index;
    for (IndexSequence seq(check); seq.index() < std::max(s, last_probe + 1); seq.Next()) {
      const uint64_t i = seq.index();
      if (i < s) {
        diff[i].Apply(e, check, -sign);
        if (queue) queue->push_back(i);
      }
      while (pi < probes.size() && probes[pi].index < i) ++pi;
      if (pi < probes.size() && probes[pi].index == i)
        probes[pi].residual ^= static_cast<uint16_t>(check);
    }
  }

  Status Peel(std::deque<uint64_t> queue) {
    // A peer can make up elements with valid checks; bound the work it can cause.
    const size_t limit = 2 * diff.size() + 64;
    while (!queue.empty()) {
      const uint64_t i = queue.front();
      queue.pop_front();
      if (i >= diff.size() || !diff[i].IsPure()) continue;
      const Element e = diff[i].KeyElement();
      const int64_t sign = diff[i].count;
      const uint64_t check = diff[i].check;
      if (!seen.insert(e).second) return Malformed("an element decoded twice");
      if (decoded.size() >= limit) return Malformed("more differences decoded than symbols allow");
      decoded.emplace_back(e, sign);
      Subtract(e, check, sign, &queue);
    }
    return Status::Ok();
  }

  bool AllZero() const {
    return std::all_of(diff.begin(), diff.end(), [](const Symbol& s) { return s.IsZero(); });
  }

  // An upper estimate of the differences not yet decoded, from which residual symbols (full
  // ones and probes) are zero: an element misses symbol i with probability i/(i+2),
  // independently. Returns the largest d whose log-likelihood is within kLogLikelihoodSlack
  // of the maximum, so the margin grows where the observations say little. A local
  // heuristic; floating point never reaches the wire.
  uint64_t EstimateRemaining() const {
    struct Obs {
      double log_miss;
      bool zero;
    };
    std::vector<Obs> obs;
    for (uint64_t i = 1; i < diff.size(); ++i) {
      obs.push_back(
          {std::log(static_cast<double>(i) / static_cast<double>(i + 2)), diff[i].IsZero()});
    }
    for (const Probe& p : probes) {
      if (p.index < diff.size() || p.index >= m_eff) continue;
      obs.push_back({std::log(static_cast<double>(p.index) / static_cast<double>(p.index + 2)),
                     p.residual == 0});
    }
    const uint64_t lower = std::max<uint64_t>(1, static_cast<uint64_t>(std::llabs(diff[0].count)));
    std::vector<std::pair<uint64_t, double>> curve;
    double best_ll = -INFINITY;
    const uint64_t cap = 8 * m_eff + 64;
    for (uint64_t d = lower; d <= cap; d = std::max(d + 1, d + d / 32)) {
      double ll = 0;
      for (const Obs& o : obs) {
        const double miss_all = o.log_miss * static_cast<double>(d);
        ll += o.zero ? miss_all : std::log1p(-std::exp(miss_all));
      }
      curve.emplace_back(d, ll);
      best_ll = std::max(best_ll, ll);
    }
    uint64_t upper = lower;
    for (const auto& [d, ll] : curve) {
      if (ll >= best_ll - kLogLikelihoodSlack) upper = d;
    }
    return upper;
  }

  // Our elements in id order, read from the store a chunk at a time.
  Status NextOwn(const FingerprintStore& store, std::optional<Element>* out) {
    if (own_pos == own_buf.size()) {
      if (!own_more) {
        out->reset();
        return Status::Ok();
      }
      own_pos = 0;
      bool more = false;
      if (Status s =
              store.ListElements(own_after ? &*own_after : nullptr, kOwnChunk, &own_buf, &more);
          !s.ok()) {
        return s;
      }
      own_more = more;
      if (!own_buf.empty()) own_after = own_buf.back().id;
      if (own_buf.empty()) {
        out->reset();
        return Status::Ok();
      }
    }
    *out = own_buf[own_pos];
    return Status::Ok();
  }
};

Initiator::Initiator(const FingerprintStore& store) : store_(store) {}
Initiator::~Initiator() = default;

Status Initiator::Fail(Status s) {
  state_ = State::kFailed;
  return s;
}

Result<std::string> Initiator::Start() {
  if (state_ != State::kIdle)
    return Status::Error(ErrorCode::kBadRequest, "reconciliation already started");
  if (store_.stored_symbols() == 0)
    return Fail(Status::Error(ErrorCode::kInternal, "store keeps no symbols"));
  std::vector<Symbol> s0;
  if (Status s = store_.ReadSymbols(0, 1, &s0); !s.ok()) return Fail(s);
  if (s0[0].count < 0)
    return Fail(Status::Error(ErrorCode::kInternal, "negative item count in store"));
  wire::Writer w;
  w.Byte(wire::kVersion);
  w.Byte(wire::kHello);
  w.Varint(static_cast<uint64_t>(s0[0].count));
  const auto fp = RootFingerprint(s0[0]);
  w.Bytes(fp.data(), fp.size());
  std::string msg = w.Take();
  bytes_sent_ += msg.size();
  state_ = State::kHello;
  return msg;
}

Result<std::optional<std::string>> Initiator::Next(std::string_view reply,
                                                   std::vector<std::string>* have_ids,
                                                   std::vector<std::string>* need_ids,
                                                   std::vector<std::string>* mismatched_ids) {
  if (state_ == State::kIdle || state_ == State::kDone || state_ == State::kFailed) {
    return Status::Error(ErrorCode::kBadRequest, "reconciliation is not waiting for a reply");
  }
  ++round_trips_;
  bytes_received_ += reply.size();
  wire::Reader r(reply);
  uint8_t type;
  if (Status s = ReadHeader(&r, &type); !s.ok()) return Fail(s);
  const std::string_view body = reply.substr(2);

  Result<std::optional<std::string>> next = std::optional<std::string>();
  if (state_ == State::kHello && type == wire::kInSync) {
    if (body.size() != 0) return Fail(Malformed("bad IN_SYNC"));
    state_ = State::kDone;
  } else if (state_ == State::kHello && type == wire::kDiffer) {
    next = OnDiffer(body);
  } else if (state_ == State::kSymbols && type == wire::kSymbols) {
    next = OnSymbols(body);
  } else if (state_ == State::kItems && type == wire::kItems) {
    next = OnItems(body);
  } else {
    return Fail(Malformed("unexpected message type " + std::to_string(type)));
  }
  if (!next.ok()) return Fail(next.status());
  if (next->has_value()) {
    bytes_sent_ += (*next)->size();
  } else {
    state_ = State::kDone;
    have_ids->insert(have_ids->end(), have_.begin(), have_.end());
    need_ids->insert(need_ids->end(), need_.begin(), need_.end());
    mismatched_ids->insert(mismatched_ids->end(), mismatched_.begin(), mismatched_.end());
  }
  return next;
}

Result<std::optional<std::string>> Initiator::OnDiffer(std::string_view body) {
  wire::Reader r(body);
  uint64_t m_resp, n;
  if (!r.Varint(&m_resp) || !r.Varint(&n)) return Malformed("bad DIFFER");
  if (m_resp == 0 || m_resp > kMaxSymbolIndex || n != std::min(wire::kFirstSymbols, m_resp)) {
    return Malformed("bad DIFFER symbol counts");
  }
  std::vector<Symbol> theirs(n);
  for (Symbol& s : theirs) {
    if (!r.Sym(&s)) return Malformed("truncated DIFFER symbols");
  }
  const std::vector<uint64_t> probe_idx = ProbeIndices(m_resp);
  uint64_t p;
  if (!r.Varint(&p) || p != probe_idx.size()) return Malformed("bad DIFFER probe count");
  std::vector<uint16_t> probe_val(p);
  for (uint16_t& v : probe_val) {
    if (!r.Le16(&v)) return Malformed("truncated DIFFER probes");
  }
  if (!r.done()) return Malformed("trailing bytes in DIFFER");
  if (theirs[0].count < 0) return Malformed("negative item count");

  dec_ = std::make_unique<Decoder>();
  Decoder& d = *dec_;
  d.m_eff = std::min(store_.stored_symbols(), m_resp);
  d.their_count = static_cast<uint64_t>(theirs[0].count);
  if (Status s = store_.ReadSymbols(0, d.m_eff, &d.mine); !s.ok()) return s;
  const uint64_t s1 = std::min(n, d.m_eff);
  d.diff.assign(d.mine.begin(), d.mine.begin() + static_cast<ptrdiff_t>(s1));
  for (uint64_t i = 0; i < s1; ++i) d.diff[i].Subtract(theirs[i]);
  for (size_t j = 0; j < probe_idx.size(); ++j) {
    if (probe_idx[j] >= d.m_eff) break;
    d.probes.push_back(
        {probe_idx[j],
         static_cast<uint16_t>(static_cast<uint16_t>(d.mine[probe_idx[j]].check) ^ probe_val[j])});
  }
  d.requested_end = s1;
  std::deque<uint64_t> queue;
  for (uint64_t i = 0; i < s1; ++i) queue.push_back(i);
  if (Status s = d.Peel(std::move(queue)); !s.ok()) return s;
  return Continue();
}

Result<std::optional<std::string>> Initiator::Continue() {
  Decoder& d = *dec_;
  if (d.AllZero()) {
    // Done: classify the decoded elements by id.
    std::sort(d.decoded.begin(), d.decoded.end(),
              [](const auto& a, const auto& b) { return a.first.id < b.first.id; });
    for (size_t i = 0; i < d.decoded.size();) {
      size_t j = i;
      while (j < d.decoded.size() && d.decoded[j].first.id == d.decoded[i].first.id) ++j;
      const std::string id = d.decoded[i].first.IdString();
      if (j - i == 1) {
        (d.decoded[i].second > 0 ? have_ : need_).push_back(id);
      } else if (j - i == 2 && d.decoded[i].second != d.decoded[i + 1].second) {
        mismatched_.push_back(id);
      } else if (d.symbol_rounds > 0) {
        return Relist();  // several rounds: the responder's set may have changed between them
      } else {
        return Malformed("an id decoded with two contents on one side");
      }
      i = j;
    }
    return std::optional<std::string>();
  }

  const uint64_t s = d.diff.size();
  const uint64_t estimate = d.decoded.size() + d.EstimateRemaining();
  uint64_t target =
      static_cast<uint64_t>(std::ceil(kSymbolsPerDifference * static_cast<double>(estimate))) +
      kSymbolSlack;
  // The estimate fell short once: this request is the third round trip, the last one the
  // targets allow, so it is generous (only a few percent of exchanges get here).
  if (d.symbol_rounds > 0) target = std::max(target, 4 * s);
  target = std::max(target, s + wire::kFirstSymbols);
  const bool too_many = target > d.m_eff && s >= d.m_eff;
  const uint64_t end = std::min({target, d.m_eff, s + wire::kMaxSymbolsPerMessage});
  const bool listing_cheaper = (end - s) * kSymbolWireBytes > d.their_count * kItemWireBytes + 64;
  if (too_many || target > d.m_eff || listing_cheaper) {
    listing_ = true;
    state_ = State::kItems;
    return std::optional<std::string>(GetItems());
  }
  ++d.symbol_rounds;
  d.requested_end = end;
  state_ = State::kSymbols;
  wire::Writer w;
  w.Byte(wire::kVersion);
  w.Byte(wire::kGetSymbols);
  w.Varint(s);
  w.Varint(end);
  return std::optional<std::string>(w.Take());
}

Result<std::optional<std::string>> Initiator::OnSymbols(std::string_view body) {
  Decoder& d = *dec_;
  wire::Reader r(body);
  uint64_t begin, n;
  const uint64_t s = d.diff.size();
  if (!r.Varint(&begin) || !r.Varint(&n)) return Malformed("bad SYMBOLS");
  if (begin != s || n != d.requested_end - s) return Malformed("SYMBOLS for another range");
  d.diff.resize(d.requested_end);
  for (uint64_t i = s; i < d.requested_end; ++i) {
    Symbol theirs;
    if (!r.Sym(&theirs)) return Malformed("truncated SYMBOLS");
    d.diff[i] = d.mine[i];
    d.diff[i].Subtract(theirs);
  }
  if (!r.done()) return Malformed("trailing bytes in SYMBOLS");
  // Elements already decoded are removed from the new symbols too.
  for (const auto& [e, sign] : d.decoded) {
    const uint64_t check = e.Check();
    for (IndexSequence seq(check); seq.index() < d.requested_end; seq.Next()) {
      if (seq.index() >= s) d.diff[seq.index()].Apply(e, check, -sign);
    }
  }
  std::deque<uint64_t> queue;
  for (uint64_t i = s; i < d.requested_end; ++i) queue.push_back(i);
  if (Status st = d.Peel(std::move(queue)); !st.ok()) return Relist();
  return Continue();
}

// Symbols of a later round that do not decode with the first ones: the responder's set
// changed between the two (HQ's balance sets change under other terminals' uploads, each
// reply read in its own snapshot). The coded attempt is dropped and the items are listed,
// which takes the set as it is now; a listing is bounded by the responder's count, so a
// peer gains nothing by causing it.
Result<std::optional<std::string>> Initiator::Relist() {
  listing_ = true;
  relisted_ = true;
  state_ = State::kItems;
  return std::optional<std::string>(GetItems());
}

std::string Initiator::GetItems() {
  wire::Writer w;
  w.Byte(wire::kVersion);
  w.Byte(wire::kGetItems);
  if (dec_->their_last) {
    w.Byte(1);
    w.Bytes(dec_->their_last->data(), kIdSize);
  } else {
    w.Byte(0);
  }
  w.Varint(wire::kMaxItemsPerMessage);
  return w.Take();
}

Result<std::optional<std::string>> Initiator::OnItems(std::string_view body) {
  Decoder& d = *dec_;
  if (!d.their_last && d.own_after == std::nullopt && d.own_pos == 0 && d.own_buf.empty()) {
    // First page: the coded attempt is abandoned, listing decides everything.
    have_.clear();
    need_.clear();
    mismatched_.clear();
  }
  wire::Reader r(body);
  uint64_t n;
  if (!r.Varint(&n) || n > wire::kMaxItemsPerMessage) return Malformed("bad ITEMS count");
  if (r.remaining() != n * kKeySize + 1) return Malformed("ITEMS length does not match its count");
  std::vector<Element> theirs(n);
  for (Element& e : theirs) {
    r.Bytes(e.id.data(), kIdSize);
    r.Bytes(e.tag.data(), kTagSize);
    if (d.their_last && !(*d.their_last < e.id))
      return Malformed("ITEMS not in increasing id order");
    d.their_last = e.id;
  }
  uint8_t more;
  if (!r.Byte(&more) || more > 1 || !r.done()) return Malformed("bad ITEMS trailer");
  if (more && n == 0) return Malformed("empty ITEMS page with more to come");

  std::optional<Element> own;
  for (const Element& t : theirs) {
    for (;;) {
      if (Status s = d.NextOwn(store_, &own); !s.ok()) return s;
      if (!own || !(own->id < t.id)) break;
      have_.push_back(own->IdString());
      ++d.own_pos;
    }
    if (own && own->id == t.id) {
      if (own->tag != t.tag) mismatched_.push_back(t.IdString());
      ++d.own_pos;
    } else {
      need_.push_back(t.IdString());
    }
  }
  if (more) return std::optional<std::string>(GetItems());
  for (;;) {
    if (Status s = d.NextOwn(store_, &own); !s.ok()) return s;
    if (!own) break;
    have_.push_back(own->IdString());
    ++d.own_pos;
  }
  return std::optional<std::string>();
}

}  // namespace loyalty::recon
