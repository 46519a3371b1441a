#include "disque/persist/aof_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "disque/persist/aof_format.h"

namespace disque::persist {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kRetryMs = 1000;
constexpr int64_t kSweepMs = 10;

// fsync of the directory holding `path`, so that a rename survives a crash.
void SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

struct AofWriter::File {
  int fd;
  explicit File(int f) : fd(f) {}
  ~File() { ::close(fd); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
};

AofWriter::AofWriter(Listener listener) : listener_(std::move(listener)) {
  writer_ = std::thread([this] { WriterLoop(); });
  syncer_ = std::thread([this] { SyncerLoop(); });
}

AofWriter::~AofWriter() {
  Close();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  sync_cv_.notify_all();
  writer_.join();
  syncer_.join();
}

Status AofWriter::Open(const std::string& path, config::AppendFsync policy) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(std::string("can't open the append-only file: ") + std::strerror(errno));
  auto file = std::make_shared<File>(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::Error(std::string("can't stat the append-only file: ") + std::strerror(errno));
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    const std::string header = FileHeader();
    size_t written = 0;
    if (const int err = WriteAll(*file, header, &written); err != 0) {
      return Status::Error(std::string("can't write the append-only file header: ") + std::strerror(err));
    }
    ::fdatasync(fd);
    SyncDirectoryOf(path);
    size = header.size();
  }
  std::lock_guard lock(mu_);
  policy_.store(policy);
  file_ = std::move(file);
  file_size_ = base_size_ = size;
  open_.store(true);
  return Status::Ok();
}

void AofWriter::Close() {
  std::unique_lock lock(mu_);
  if (file_ == nullptr || stop_) return;
  close_requested_ = true;
  const uint64_t generation = close_generation_;
  cv_.notify_all();
  done_cv_.wait(lock, [&] { return close_generation_ != generation; });
}

uint64_t AofWriter::Append(std::string_view records) {
  if (records.empty()) return 0;
  std::lock_guard lock(mu_);
  if (capturing_) capture_.append(records);
  if (file_ == nullptr && !switching_) return 0;
  const bool was_empty = pending_.empty();
  pending_.append(records);
  appended_ += records.size();
  // Under `always` the writer thread writes (and fsyncs) at once. Otherwise the reply
  // path writes through (WriteThrough) and the thread only sweeps up, within
  // kSweepMs, what no reply waits for (records caused by the bus or by timers).
  if (was_empty && policy_.load() == config::AppendFsync::kAlways) cv_.notify_all();
  return appended_;
}

void AofWriter::BeginCapture() {
  std::lock_guard lock(mu_);
  capturing_ = true;
  capture_.clear();
}

void AofWriter::EndCapture() {
  std::lock_guard lock(mu_);
  capturing_ = false;
  std::string().swap(capture_);
}

Status AofWriter::FinishRewrite(int temp_fd, const std::string& temp_path, const std::string& path, bool adopt) {
  FinishRequest request{temp_fd, temp_path, path, adopt, Status::Ok()};
  std::unique_lock lock(mu_);
  finish_ = &request;
  cv_.notify_all();
  done_cv_.wait(lock, [&] { return request.done; });
  return request.result;
}

AofWriterStats AofWriter::stats() const {
  std::lock_guard lock(mu_);
  AofWriterStats s;
  s.open = file_ != nullptr;
  s.current_size = file_size_;
  s.base_size = base_size_;
  s.buffer_length = pending_.size();
  s.rewrite_buffer_length = capture_.size();
  s.fsync_in_progress = fsync_in_progress_.load();
  s.fsyncs = fsyncs_.load();
  s.last_write_errno = last_errno_.load();
  return s;
}

int AofWriter::WriteAll(File& file, std::string_view data, size_t* written) {
  *written = 0;
  if (const int err = injected_errno_.load(); err != 0) return err;
  while (*written < data.size()) {
    const ssize_t n = ::write(file.fd, data.data() + *written, data.size() - *written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;
    *written += static_cast<size_t>(n);
  }
  return 0;
}

void AofWriter::Notify() {
  if (listener_) listener_();
}

void AofWriter::WriterLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    auto can_write = [this] {
      const bool retry_wait = last_errno_.load() != 0 && SteadyMs() < retry_at_ms_;
      return !pending_.empty() && file_ != nullptr && !retry_wait;
    };
    if (finish_ == nullptr && !can_write() && !close_requested_) {
      if (stop_) break;
      if (last_errno_.load() != 0 && !pending_.empty()) {
        cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, retry_at_ms_ - SteadyMs())));
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(kSweepMs));
      }
      continue;
    }
    // Every write to the file happens under io_mu_, taken before mu_: shard threads
    // write through under it too (WriteThrough).
    lock.unlock();
    std::lock_guard io(io_mu_);
    lock.lock();
    if (finish_ != nullptr) {
      DoFinish(lock);
    } else if (can_write()) {
      FlushPending(lock);
    } else if (close_requested_) {
      DoClose(lock);
    }
  }
}

void AofWriter::WriteThrough(uint64_t pos) {
  if (released_.load() >= pos) return;
  std::lock_guard io(io_mu_);
  std::unique_lock lock(mu_);
  // Anything unusual (a failed write being retried, a rewrite switching files) is left
  // to the writer thread.
  if (released_.load() >= pos || file_ == nullptr || switching_ || finish_ != nullptr || pending_.empty() ||
      last_errno_.load() != 0) {
    return;
  }
  FlushPending(lock);
}

void AofWriter::FlushPending(std::unique_lock<std::mutex>& lock) {
  std::string batch;
  batch.swap(pending_);
  const uint64_t upto = appended_;
  std::shared_ptr<File> file = file_;
  const bool fsync = policy_.load() == config::AppendFsync::kAlways && !(capturing_ && no_fsync_on_rewrite_.load());
  lock.unlock();
  size_t written = 0;
  int err = WriteAll(*file, batch, &written);
  if (err == 0 && fsync) {
    if (::fdatasync(file->fd) != 0) err = errno;
    fsyncs_.fetch_add(1);
  }
  lock.lock();
  if (err == 0) {
    file_size_ += batch.size();
    dirty_ = !fsync;
    if (last_errno_.exchange(0) != 0) spdlog::warn("AOF write error looks solved, Disque can write again.");
    released_.store(upto);
  } else {
    // Never leave half a record: cut the file back to its last good size. If even that
    // fails, the part written stays and the rest is written after it.
    if (written > 0) {
      if (::ftruncate(file->fd, static_cast<off_t>(file_size_)) != 0) {
        file_size_ += written;
        batch.erase(0, written);
      }
    }
    pending_.insert(0, batch);
    retry_at_ms_ = SteadyMs() + kRetryMs;
    if (last_errno_.exchange(err) == 0) spdlog::warn("Error writing to the AOF file: {}", std::strerror(err));
    if (policy_.load() == config::AppendFsync::kAlways) {
      spdlog::warn("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting...");
      std::_Exit(1);
    }
    // As Disque: the replies go out; the data follows when a write succeeds.
    released_.store(upto);
  }
  lock.unlock();
  Notify();
  lock.lock();
}

void AofWriter::DoClose(std::unique_lock<std::mutex>& lock) {
  close_requested_ = false;
  if (file_ != nullptr) {
    std::shared_ptr<File> file = std::move(file_);
    open_.store(false);
    // Whatever could not be written (a persistent error) is lost with the file.
    if (!pending_.empty()) spdlog::warn("AOF closed with {} bytes that could not be written", pending_.size());
    pending_.clear();
    released_.store(appended_);
    lock.unlock();
    ::fdatasync(file->fd);
    fsyncs_.fetch_add(1);
    file.reset();
    lock.lock();
    dirty_ = false;
  }
  ++close_generation_;
  done_cv_.notify_all();
  lock.unlock();
  Notify();
  lock.lock();
}

void AofWriter::DoFinish(std::unique_lock<std::mutex>& lock) {
  FinishRequest& req = *finish_;
  finish_ = nullptr;
  auto temp = std::make_shared<File>(req.temp_fd);
  // Everything written so far to the old file is in the capture too.
  std::string first;
  first.swap(capture_);
  lock.unlock();
  size_t written = 0;
  int err = WriteAll(*temp, first, &written);
  lock.lock();
  // The rest of the capture is written with appends held in pending_ for the new file;
  // the records pending now are already in the capture.
  std::string second;
  second.swap(capture_);
  capturing_ = false;
  const size_t captured_pending = pending_.size();
  const uint64_t upto = appended_;
  const bool adopt = file_ != nullptr || req.adopt;
  switching_ = adopt;
  lock.unlock();
  if (err == 0) err = WriteAll(*temp, second, &written);
  if (err == 0 && ::fdatasync(temp->fd) != 0) err = errno;
  if (err == 0 && ::rename(req.temp_path.c_str(), req.path.c_str()) != 0) err = errno;
  if (err == 0) SyncDirectoryOf(req.path);
  struct stat st {};
  const uint64_t size = err == 0 && ::fstat(temp->fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  lock.lock();
  switching_ = false;
  if (err != 0) {
    ::unlink(req.temp_path.c_str());
    req.result = Status::Error(std::string("rewrite failed: ") + std::strerror(err));
    if (file_ == nullptr) {
      // Nothing to append to: the waiting replies go (the AOF stays off).
      pending_.clear();
      released_.store(appended_);
    }
  } else {
    if (adopt) {
      pending_.erase(0, captured_pending);
      file_ = std::move(temp);
      file_size_ = base_size_ = size;
      dirty_ = false;
      open_.store(true);
      if (released_.load() < upto) released_.store(upto);
    }
  }
  req.done = true;
  done_cv_.notify_all();
  lock.unlock();
  Notify();
  lock.lock();
}

void AofWriter::SyncerLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    sync_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    if (stop_) break;
    if (!dirty_ || file_ == nullptr || policy_.load() != config::AppendFsync::kEverysec) continue;
    if (capturing_ && no_fsync_on_rewrite_.load()) continue;
    std::shared_ptr<File> file = file_;
    dirty_ = false;
    fsync_in_progress_.store(true);
    lock.unlock();
    ::fdatasync(file->fd);
    fsyncs_.fetch_add(1);
    fsync_in_progress_.store(false);
    lock.lock();
  }
}

}  // namespace disque::persist
