// Image source: a directory watched with inotify. Files count once they are closed after
// writing (IN_CLOSE_WRITE) or renamed into the directory (IN_MOVED_TO); dot-files are the
// writers' temporary names and are left alone. Files already present at start (or after
// an inotify queue overflow) are picked up by a directory scan.
#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "loyalty/drivers/image_decode.h"
#include "source_base.h"
#include "sources.h"

namespace loyalty::drivers::internal {
namespace {

// How often the watched directory's identity is compared with its path (operations.md: a
// directory removed and created again is watched again within five seconds).
constexpr int kIdentityCheckMs = 1000;

bool HasImageExtension(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == "png" || ext == "jpg" || ext == "jpeg" || ext == "pgm";
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

class ImageSource final : public SourceBase {
 public:
  using SourceBase::SourceBase;
  ~ImageSource() override { Stop(); }

 protected:
  Status Prepare() override {
    if (!IsDirectory(options_.directory))
      return Status::Error(ErrorCode::kInvalidArgument,
                           "image: directory " + options_.directory + " does not exist");
    if (options_.processed == "move" && !IsDirectory(options_.processed_dir))
      return Status::Error(ErrorCode::kInvalidArgument,
                           "image: processed_dir " + options_.processed_dir + " does not exist");
    return Status::Ok();
  }

  void Run() override {
    while (!stopping()) {
      const int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      const int wd = ifd < 0 ? -1
                             : inotify_add_watch(ifd, options_.directory.c_str(),
                                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF |
                                                     IN_MOVE_SELF | IN_ONLYDIR);
      if (wd < 0) {
        const std::string err = std::strerror(errno);
        if (ifd >= 0) close(ifd);
        SetState(SourceState::kDisconnected, "watch " + options_.directory + ": " + err);
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      struct stat st;
      if (stat(options_.directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        close(ifd);  // gone again between the watch and now
        SetState(SourceState::kDisconnected, "directory " + options_.directory + " went away");
        SleepUnlessStopped(options_.reopen_interval_ms);
        continue;
      }
      dev_ = st.st_dev;
      ino_ = st.st_ino;
      SetState(SourceState::kConnected, "watching " + options_.directory);
      ScanDirectory();
      Watch(ifd);
      close(ifd);
    }
  }

 private:
  // Returns when stopping or when the directory itself went away.
  void Watch(int ifd) {
    alignas(inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
    for (;;) {
      // inotify reports the watched directory's removal (IN_DELETE_SELF, IN_MOVE_SELF, then
      // IN_IGNORED); the path is also compared with the watched directory every
      // kIdentityCheckMs, for what inotify does not see (a directory renamed into the
      // path's place, a mount over it).
      const short rev = WaitReadable(ifd, kIdentityCheckMs);
      if (stopping()) return;
      if (rev == 0) {
        if (Replaced()) {
          SetState(SourceState::kDisconnected, "directory " + options_.directory + " was replaced");
          return;
        }
        continue;
      }
      const ssize_t n = read(ifd, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        SetState(SourceState::kDisconnected, "inotify read failed");
        SleepUnlessStopped(options_.reopen_interval_ms);
        return;
      }
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        if (ev->mask & IN_Q_OVERFLOW) {
          ScanDirectory();
          continue;
        }
        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          SetState(SourceState::kDisconnected, "directory " + options_.directory + " went away");
          SleepUnlessStopped(options_.reopen_interval_ms);
          return;
        }
        if (ev->len > 0 && !(ev->mask & IN_ISDIR)) Process(ev->name);
        if (stopping()) return;
      }
    }
  }

  bool Replaced() const {
    struct stat st;
    if (stat(options_.directory.c_str(), &st) != 0) return true;
    return st.st_dev != dev_ || st.st_ino != ino_ || !S_ISDIR(st.st_mode);
  }

  void ScanDirectory() {
    std::vector<std::string> names;
    if (DIR* d = opendir(options_.directory.c_str())) {
      while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
      closedir(d);
    }
    std::sort(names.begin(), names.end());  // oldest-first for the usual timestamped names
    for (const std::string& name : names) {
      if (stopping()) return;
      Process(name);
    }
  }

  void Process(const std::string& name) {
    if (name.empty() || name[0] == '.' || !HasImageExtension(name)) return;
    const std::string path = options_.directory + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    ImageHeader header;
    Result<std::vector<DecodedCode>> r = DecodeImageFile(path, &header);
    if (!r.ok()) {
      if (r.status().code() == ErrorCode::kNotFound) return;  // taken away meanwhile
      if (r.status().code() == ErrorCode::kImageTooLarge) {
        // Refused before decoding: counted, reported once per file, disposed of below.
        UpdateCounters([](SourceCounters& c) { ++c.oversized_images; });
        if (events_.on_image_refused) {
          events_.on_image_refused(
              options_.id,
              RefusedImage{name, header.width, header.height, header.channels,
                           header.bytes_per_channel, header.decoded_bytes, r.status().message()});
        }
      } else {
        Garbage(&SourceCounters::unreadable_files, "unreadable image " + name);
      }
    } else if (r->empty()) {
      UpdateCounters([](SourceCounters& c) { ++c.images_without_code; });
    } else {
      std::vector<Frame> frames;
      for (DecodedCode& code : *r) {
        Frame f;
        f.symbology = std::move(code.symbology);
        if (code.text.size() > kMaxScanBytes)
          f.overlong = true;
        else
          f.text = std::move(code.text);
        frames.push_back(std::move(f));
      }
      Deliver(&frames);
    }
    Dispose(path, name);
  }

  // Processed files leave the directory either way, so a restart does not read them again.
  void Dispose(const std::string& path, const std::string& name) {
    if (options_.processed == "move") {
      const std::string dest = options_.processed_dir + "/" + name;
      if (rename(path.c_str(), dest.c_str()) == 0) return;
    }
    unlink(path.c_str());
  }

  dev_t dev_ = 0;  // the directory being watched
  ino_t ino_ = 0;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeImageSource(const SourceOptions& o, SourceEvents e,
                                                const Clock& c) {
  if (o.directory.empty())
    return Status::Error(ErrorCode::kInvalidArgument, "image: directory is required");
  if (o.processed != "delete" && o.processed != "move")
    return Status::Error(ErrorCode::kInvalidArgument, "image: processed must be delete or move");
  if (o.processed == "move" && o.processed_dir.empty())
    return Status::Error(ErrorCode::kInvalidArgument,
                         "image: processed = move needs processed_dir");
  return std::unique_ptr<Source>(new ImageSource(o, std::move(e), c));
}

}  // namespace loyalty::drivers::internal
