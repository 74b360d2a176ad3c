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

bool HasImageExtension(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
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
      return Status::Error("invalid_argument", "image: directory " + options_.directory + " does not exist");
    if (options_.processed == "move" && !IsDirectory(options_.processed_dir))
      return Status::Error("invalid_argument",
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
      WaitReadable(ifd, -1);
      if (stopping()) return;
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
    Result<std::vector<DecodedCode>> r = DecodeImageFile(path);
    if (!r.ok()) {
      if (r.status().code() == "not_found") return;  // taken away meanwhile
      Garbage(&SourceCounters::unreadable_files, "unreadable image " + name);
    } else if (r->empty()) {
      UpdateCounters([](SourceCounters& c) { ++c.images_without_code; });
    } else {
      std::vector<Frame> frames;
      for (DecodedCode& code : *r) {
        Frame f;
        f.symbology = std::move(code.symbology);
        if (code.text.size() > kMaxScanBytes) f.overlong = true;
        else f.text = std::move(code.text);
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
};

}  // namespace

Result<std::unique_ptr<Source>> MakeImageSource(const SourceOptions& o, SourceEvents e,
                                                const Clock& c) {
  if (o.directory.empty()) return Status::Error("invalid_argument", "image: directory is required");
  if (o.processed != "delete" && o.processed != "move")
    return Status::Error("invalid_argument", "image: processed must be delete or move");
  if (o.processed == "move" && o.processed_dir.empty())
    return Status::Error("invalid_argument", "image: processed = move needs processed_dir");
  return std::unique_ptr<Source>(new ImageSource(o, std::move(e), c));
}

}  // namespace loyalty::drivers::internal
