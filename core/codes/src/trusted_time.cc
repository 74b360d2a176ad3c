#include "loyalty/codes/trusted_time.h"

namespace loyalty::codes {
namespace {

int64_t FloorSeconds(int64_t ms) { return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000); }

}  // namespace

void TrustedTime::RecordHqTime(int64_t hq_now_ms, int64_t local_mono_ms) {
  std::lock_guard lock(mu_);
  has_record_ = true;
  hq_ms_ = hq_now_ms;
  mono_ms_ = local_mono_ms;
}

bool TrustedTime::has_hq_time() const {
  std::lock_guard lock(mu_);
  return has_record_;
}

std::optional<int64_t> TrustedTime::EstimateMs(const Clock& clock) const {
  std::lock_guard lock(mu_);
  if (!has_record_) return std::nullopt;
  return hq_ms_ + (clock.mono_ms() - mono_ms_);
}

bool TrustedTime::UntrustedLocked(const Clock& clock, int64_t* estimate_ms) const {
  if (!has_record_) return false;
  *estimate_ms = hq_ms_ + (clock.mono_ms() - mono_ms_);
  int64_t diff = clock.now_ms() - *estimate_ms;
  if (diff < 0) diff = -diff;
  // Compared in milliseconds: "more than clock_skew_s" means strictly beyond the skew.
  return diff > clock_skew_s_ * 1000;
}

int64_t TrustedTime::NowS(const Clock& clock) const {
  std::lock_guard lock(mu_);
  int64_t estimate_ms = 0;
  if (UntrustedLocked(clock, &estimate_ms)) return FloorSeconds(estimate_ms);
  return clock.now_s();
}

bool TrustedTime::untrusted(const Clock& clock) const {
  std::lock_guard lock(mu_);
  int64_t estimate_ms = 0;
  return UntrustedLocked(clock, &estimate_ms);
}

TrustedTime::Transition TrustedTime::TakeTransition(const Clock& clock) {
  std::lock_guard lock(mu_);
  int64_t estimate_ms = 0;
  bool now_untrusted = UntrustedLocked(clock, &estimate_ms);
  if (now_untrusted == observed_untrusted_) return Transition::kNone;
  observed_untrusted_ = now_untrusted;
  return now_untrusted ? Transition::kBecameUntrusted : Transition::kBecameTrusted;
}

}  // namespace loyalty::codes
