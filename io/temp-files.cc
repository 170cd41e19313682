// The registry is a fixed array of C strings so that the signal handler can walk it with
// async-signal-safe calls only (unlink, write, _exit).
#include "io/temp-files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

namespace dsq {

namespace {

// Room for an OCI directory output of a many-layer image (a file per blob). Untouched slots
// cost no memory.
constexpr size_t kMaxTemps = 1024;
constexpr size_t kMaxPath = 4096;
std::array<std::array<char, kMaxPath>, kMaxTemps> g_temps{};
std::array<std::atomic<bool>, kMaxTemps> g_used{};
std::array<bool, kMaxTemps> g_is_dir{};
std::mutex g_registry_mutex;

Status register_temp(const std::string& path, bool dir = false) {
  std::lock_guard lock(g_registry_mutex);
  for (size_t i = 0; i < kMaxTemps; ++i) {
    if (!g_used[i].load()) {
      std::strncpy(g_temps[i].data(), path.c_str(), kMaxPath - 1);
      g_is_dir[i] = dir;
      g_used[i].store(true);
      return {};
    }
  }
  return Status::error(path + ": too many temporary files at once");
}

void unregister_temp(const std::string& path) {
  std::lock_guard lock(g_registry_mutex);
  for (size_t i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load() && path == g_temps[i].data()) g_used[i].store(false);
}

// Files first, then directories: a few passes, since a parent only goes once its children have
// (slots are reused, so slot order says nothing about depth; our outputs nest 3 deep).
void remove_all_temps() {
  for (size_t i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load() && !g_is_dir[i]) unlink(g_temps[i].data());
  for (int pass = 0; pass < 4; ++pass)
    for (size_t i = 0; i < kMaxTemps; ++i)
      if (g_used[i].load() && g_is_dir[i]) rmdir(g_temps[i].data());
}

// Set from the moment the daemon has the whole archive to load (the commit point) until the
// load is settled: an interrupt then is recorded, not acted upon.
std::atomic<bool> g_defer_interrupts{false};
std::atomic<int> g_pending_interrupt{0};

void on_terminate(int sig) {
  if (g_defer_interrupts.load()) {
    g_pending_interrupt.store(sig);
    return;
  }
  remove_all_temps();
  const char msg[] = "docker-squash: interrupted, temporary files removed\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(128 + sig);
}

struct Mapping {
  std::atomic<const char*> base{nullptr};
  size_t size = 0;
  char name[256] = {};
};
std::array<Mapping, 256> g_mappings;

// Appends `text` or a decimal number to a fixed buffer (async-signal-safe).
void put(char* buf, size_t& len, size_t cap, const char* text) {
  while (*text && len + 1 < cap) buf[len++] = *text++;
}
void put_number(char* buf, size_t& len, size_t cap, uint64_t n) {
  char digits[24];
  size_t d = 0;
  do digits[d++] = static_cast<char>('0' + n % 10), n /= 10;
  while (n);
  while (d > 0 && len + 1 < cap) buf[len++] = digits[--d];
}

void on_sigbus(int, siginfo_t* info, void*) {
  remove_all_temps();
  char msg[512];
  size_t len = 0;
  put(msg, len, sizeof msg, "docker-squash: ");
  const char* addr = static_cast<const char*>(info ? info->si_addr : nullptr);
  for (const Mapping& m : g_mappings) {
    const char* base = m.base.load();
    if (base != nullptr && addr >= base && addr < base + m.size) {
      put(msg, len, sizeof msg, m.name);
      put(msg, len, sizeof msg, "@");
      put_number(msg, len, sizeof msg, static_cast<uint64_t>(addr - base));
      put(msg, len, sizeof msg, ": ");
      break;
    }
  }
  put(msg, len, sizeof msg,
      "input file was truncated or changed while it was being read (SIGBUS)\n");
  (void)!write(2, msg, len);
  _exit(1);
}

struct ExitCleanup {
  ~ExitCleanup() { remove_all_temps(); }
} g_exit_cleanup;

}  // namespace

Status write_all(int fd, const void* data, size_t size, const std::string& path) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::error(path + ": write failed: " + errno_text(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Status create_temp_file(const std::string& dir, const std::string& stem, std::string& path,
                        int& fd) {
  std::string pattern = (dir.empty() ? "." : dir) + "/." + stem + ".XXXXXX";
  std::string buf = pattern;
  // Block signals between creating and registering, so an interrupt cannot orphan the file.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  fd = mkostemp(buf.data(), O_CLOEXEC);
  int err = errno;
  if (fd >= 0) (void)register_temp(buf);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (fd < 0) return Status::error(pattern + ": cannot create temporary file: " + errno_text(err));
  path = buf;
  return {};
}

Status create_anonymous_file(const std::string& dir, int& fd) {
  fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return {};
  std::string path;
  DSQ_TRY(create_temp_file(dir, "spool", path, fd));
  unlink(path.c_str());
  unregister_temp(path);
  return {};
}

Status commit_temp_file(const std::string& temp_path, const std::string& final_path) {
  if (rename(temp_path.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    discard_temp_file(temp_path);
    return Status::error(final_path +
                         ": cannot rename temporary file into place: " + errno_text(err));
  }
  unregister_temp(temp_path);
  return {};
}

void discard_temp_file(const std::string& temp_path) {
  unlink(temp_path.c_str());
  unregister_temp(temp_path);
}

Status create_temp_dir(const std::string& parent, const std::string& stem, std::string& path) {
  std::string buf = (parent.empty() ? "." : parent) + "/." + stem + ".XXXXXX";
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  bool made = mkdtemp(buf.data()) != nullptr;
  int err = errno;
  Status st = made ? register_temp(buf, true) : Status{};
  if (!st.ok()) rmdir(buf.c_str());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!made) return Status::error(buf + ": cannot create temporary directory: " + errno_text(err));
  path = buf;
  return st;
}

Status create_in_temp_dir(const std::string& path, bool dir, int& fd) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  fd = -1;
  bool made = dir ? mkdir(path.c_str(), 0755) == 0
                  : (fd = open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644)) >= 0;
  int err = errno;
  Status st = made ? register_temp(path, dir) : Status{};
  if (!st.ok()) {
    if (fd >= 0) close(fd), fd = -1;
    dir ? rmdir(path.c_str()) : unlink(path.c_str());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!made) return Status::error(path + ": cannot create: " + errno_text(err));
  return st;
}

void forget_temps_under(const std::string& dir) {
  std::lock_guard lock(g_registry_mutex);
  for (size_t i = 0; i < kMaxTemps; ++i) {
    std::string_view p = g_temps[i].data();
    if (g_used[i].load() && (p == dir || (p.starts_with(dir) && p[dir.size()] == '/')))
      g_used[i].store(false);
  }
}

void discard_temps_under(const std::string& dir) {
  std::vector<std::pair<std::string, bool>> found;
  {
    std::lock_guard lock(g_registry_mutex);
    for (size_t i = 0; i < kMaxTemps; ++i) {
      std::string_view p = g_temps[i].data();
      if (g_used[i].load() && (p == dir || (p.starts_with(dir) && p[dir.size()] == '/')))
        found.emplace_back(std::string(p), g_is_dir[i]);
    }
  }
  for (auto& [p, is_dir] : found)
    if (!is_dir) unlink(p.c_str());
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return a.first.size() > b.first.size();  // deepest first
  });
  for (auto& [p, is_dir] : found)
    if (is_dir) rmdir(p.c_str());
  forget_temps_under(dir);
}

void rename_temp(const std::string& from, const std::string& to) {
  std::lock_guard lock(g_registry_mutex);
  for (size_t i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load() && from == g_temps[i].data())
      std::strncpy(g_temps[i].data(), to.c_str(), kMaxPath - 1);
}

void remember_mapping(const std::string& name, const void* base, size_t size) {
  std::lock_guard lock(g_registry_mutex);
  for (Mapping& m : g_mappings) {
    if (m.base.load() == nullptr) {
      std::strncpy(m.name, name.c_str(), sizeof m.name - 1);
      m.size = size;
      m.base.store(static_cast<const char*>(base));
      return;
    }
  }
}

void forget_mapping(const void* base) {
  std::lock_guard lock(g_registry_mutex);
  for (Mapping& m : g_mappings)
    if (m.base.load() == base) m.base.store(nullptr);
}

void defer_interrupts(bool defer) { g_defer_interrupts.store(defer); }

int take_pending_interrupt() { return g_pending_interrupt.exchange(0); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_terminate;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction bus {};
  bus.sa_sigaction = on_sigbus;
  bus.sa_flags = SA_SIGINFO;
  sigemptyset(&bus.sa_mask);
  sigaction(SIGBUS, &bus, nullptr);
}

std::string temp_dir(const std::string& option) {
  if (!option.empty()) return option;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read on the main thread; nothing calls setenv.
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') return t;
  return "/tmp";
}

}  // namespace dsq
