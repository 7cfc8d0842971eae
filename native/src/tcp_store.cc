#include "tcp_store.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace mixprec {

namespace {

constexpr uint8_t kSet = 1;
constexpr uint8_t kGet = 2;
constexpr uint8_t kOk = 0;
constexpr uint8_t kTimedOut = 1;

using Clock = std::chrono::steady_clock;

void appendU32(std::vector<char>& out, uint32_t v) {
  const uint32_t be = htonl(v);
  const char* p = reinterpret_cast<const char*>(&be);
  out.insert(out.end(), p, p + 4);
}

uint32_t readU32(const char* p) {
  uint32_t be;
  std::memcpy(&be, p, 4);
  return ntohl(be);
}

// One socket to host:port, or -1 with errno set (refused, unreachable, ...).
int connectOnce(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    const int saved = errno;
    close(fd);
    fd = -1;
    errno = saved;
  }
  freeaddrinfo(found);
  if (fd >= 0) {
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  }
  return fd;
}

// Waits until fd is readable/writable or the deadline passes.
void waitFor(int fd, short events, Clock::time_point deadline, const std::string& what) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error(what + ": timed out");
    pollfd p{fd, events, 0};
    const int rv = poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (rv > 0) return;
    if (rv < 0 && errno != EINTR) throw std::runtime_error(what + ": " + std::strerror(errno));
  }
}

void sendAll(int fd, const std::vector<char>& data, Clock::time_point deadline, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    waitFor(fd, POLLOUT, deadline, what);
    const ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::runtime_error(what + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

void recvAll(int fd, char* out, size_t size, Clock::time_point deadline, const std::string& what) {
  size_t done = 0;
  while (done < size) {
    waitFor(fd, POLLIN, deadline, what);
    const ssize_t n = recv(fd, out + done, size - done, 0);
    if (n == 0) throw std::runtime_error(what + ": the store closed the connection (is rank 0 gone?)");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw std::runtime_error(what + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

TcpStore::TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout)
    : where_(host + ":" + std::to_string(port)), timeout_(timeout) {
  const auto deadline = Clock::now() + timeout;
  int lastError = 0;
  while (Clock::now() < deadline) {
    fd_ = connectOnce(host, port);
    if (fd_ >= 0) return;
    lastError = errno;
    // Rank 0 may not be listening yet: retry, as torch's TCPStore clients do.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("could not reach the rendezvous store at " + where_ + " (MASTER_ADDR:MASTER_PORT) within " +
                           std::to_string(timeout.count()) + " ms: " + std::strerror(lastError ? lastError : ETIMEDOUT));
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) close(fd_);
}

std::vector<char> TcpStore::request(uint8_t op, const std::string& key, const std::vector<char>& value, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<char> frame;
  frame.push_back(static_cast<char>(op));
  appendU32(frame, static_cast<uint32_t>(key.size()));
  frame.insert(frame.end(), key.begin(), key.end());
  appendU32(frame, static_cast<uint32_t>(value.size()));
  frame.insert(frame.end(), value.begin(), value.end());
  // The server answers a get when the key is set or its own timeout passes; allow it a margin.
  const auto deadline = Clock::now() + timeout + std::chrono::seconds(5);
  const std::string what = "rendezvous store " + where_;
  sendAll(fd_, frame, deadline, what);
  char head[5];
  recvAll(fd_, head, 5, deadline, what);
  std::vector<char> body(readU32(head + 1));
  if (!body.empty()) recvAll(fd_, body.data(), body.size(), deadline, what);
  const auto status = static_cast<uint8_t>(head[0]);
  if (status == kOk) return body;
  if (status == kTimedOut) {
    throw std::runtime_error("timed out after " + std::to_string(timeout.count()) + " ms waiting for key '" + key +
                             "' in the rendezvous store " + where_ + " (did every rank start?)");
  }
  throw std::runtime_error(what + ": " + std::string(body.begin(), body.end()));
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) { request(kSet, key, data, timeout_); }

std::vector<char> TcpStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::vector<char> wait;
  appendU32(wait, static_cast<uint32_t>(timeout.count()));
  return request(kGet, key, wait, timeout);
}

std::vector<char> TcpStore::get(const std::string& key) { return get(key, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys) { wait(keys, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  const auto deadline = Clock::now() + timeout;
  for (const auto& key : keys) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    get(key, std::max(left, std::chrono::milliseconds(0)));
  }
}

}  // namespace mixprec
