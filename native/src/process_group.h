// A Gloo process group: rendezvous through a store, a full mesh of TCP pairs, and the collectives.
// Every collective runs on the group's own worker thread, in the order they were queued (all ranks
// queue the same sequence, as with torch.distributed); the JavaScript side waits on a promise or,
// inside DistributedDataParallel's backward, blocks until its job is done (job.h).
//
// Each peer has a receive posted on a slot nobody sends to (a heartbeat): when that peer's
// connection breaks (its process died), Gloo fails the receive, and if a collective is in flight
// every pair is failed, so no rank waits for the timeout on a peer that is alive but itself stuck
// waiting. Errors name the ranks that are gone.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <string>
#include <thread>

#include "gloo/rendezvous/context.h"
#include "gloo/rendezvous/store.h"
#include "gloo/transport/device.h"
#include "gloo/transport/unbound_buffer.h"
#include "reduce.h"

namespace mixprec {

struct GroupOptions {
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{1800000};
  std::string storeKind;  // "tcp" | "file" | "redis"
  std::string storeHost;  // tcp, redis
  int storePort = 0;      // tcp, redis
  std::string storePath;  // file: a directory on a shared file system
  std::string prefix;     // namespaces this group's keys in the store
  std::string hostname;   // the local address the TCP transport binds to
};

enum class Compression { None, Float16, BFloat16 };

// One queued collective; `done` flips once, under `mutex`.
struct Job {
  std::function<void()> run;
  std::string name;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::string error;  // empty: succeeded
};

class ProcessGroup {
 public:
  explicit ProcessGroup(GroupOptions options);
  ~ProcessGroup();

  int rank() const { return options_.rank; }
  int size() const { return options_.size; }

  // Queue a job; `onDone` (if set) runs on the worker thread after the job finished.
  void enqueue(std::shared_ptr<Job> job, std::function<void()> onDone);
  // Block until the job is done; returns its error ("" on success).
  static std::string wait(Job& job);
  // Finish the queued jobs, then stop the worker and close the connections. With `abort`, fail
  // what is in flight first (process exit while a collective waits on a peer).
  void shutdown(bool abort);
  // True when shutdown(true) had to leave a worker that would not stop (the object must then leak).
  bool stillRunning() const { return detached_; }

  // The collectives, run on the worker thread by the jobs the addon queues.
  void connect();
  void allReduce(void* data, size_t count, DType dtype, ReduceOp op);
  void broadcast(void* data, size_t bytes, int root);
  void allGather(const void* input, void* output, size_t bytesPerRank);
  // In place over `count` * size elements; this rank's reduced block ends up at the front.
  void reduceScatter(void* data, size_t countPerRank, DType dtype, ReduceOp op);
  void barrier();
  // DistributedDataParallel's bucket: divide by the world size, all-reduce (optionally as 16-bit
  // values on the wire), and leave the average in `data` as float32.
  void averageBucket(float* data, size_t count, Compression compression);

 private:
  void workerLoop();
  void startHeartbeats();
  void onPeerError(int peer, const std::string& message);
  // Interrupt the collective in flight (Gloo then fails every pair).
  void abortInFlight();
  std::string describeFailure(const std::string& op, const std::string& gloo);
  uint32_t nextTag() { return tag_++; }

  GroupOptions options_;
  std::unique_ptr<gloo::rendezvous::Store> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  uint32_t tag_ = 1;
  // averageBucket's 16-bit copy of a bucket (the worker thread's alone)
  std::vector<uint16_t> wire_;

  std::mutex queueMutex_;
  std::condition_variable queueCv_;
  std::deque<std::pair<std::shared_ptr<Job>, std::function<void()>>> queue_;
  bool stopping_ = false;
  bool workerExited_ = false;
  bool detached_ = false;
  std::condition_variable workerExitedCv_;
  std::thread worker_;

  std::atomic<bool> inFlight_{false};
  std::atomic<bool> connected_{false};
  std::vector<char> heartbeatBytes_;
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> heartbeats_;
  std::vector<std::thread> heartbeatThreads_;
  // Set once the group is unusable (a peer is gone, or a collective failed): later jobs fail with it.
  std::mutex lostMutex_;
  std::condition_variable lostCv_;
  std::string lostDetail_;
};

}  // namespace mixprec
