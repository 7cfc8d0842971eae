// The client of the rendezvous key-value store that rank 0 serves for `env://` (as torchrun's TCP
// store): a gloo::rendezvous::Store over one blocking TCP connection to MASTER_ADDR:MASTER_PORT.
// The server is src/distributed/tcp_store.ts; the frames are described there.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "gloo/rendezvous/store.h"

namespace mixprec {

class TcpStore : public gloo::rendezvous::Store {
 public:
  // Connects, retrying while the server is not up yet, for at most `timeout`.
  TcpStore(const std::string& host, int port, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  // Waits for the key (up to the store's timeout), as Gloo's FileStore does.
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<char> request(uint8_t op, const std::string& key, const std::vector<char>& value, std::chrono::milliseconds timeout);
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout);

  std::string where_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::mutex mutex_;
};

}  // namespace mixprec
