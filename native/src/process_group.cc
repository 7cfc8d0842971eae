#include "process_group.h"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/reduce_scatter.h"
#include "gloo/rendezvous/file_store.h"
#include "gloo/rendezvous/prefix_store.h"
#include "gloo/rendezvous/redis_store.h"
#include "gloo/transport/tcp/device.h"
#include "gloo/transport/unbound_buffer.h"
#include "gloo/types.h"
#include "convert.h"
#include "tcp_store.h"

namespace mixprec {

namespace {

// Slots of our own point-to-point messages (Gloo's collectives use prefixes 0x01-0x08).
const uint64_t kHeartbeatSlot = gloo::Slot::build(0xee, 0);
const uint64_t kAbortSlot = gloo::Slot::build(0xef, 0);
// A wait that outlives any run.
constexpr std::chrono::milliseconds kForever = std::chrono::hours(24 * 365);

// "[/path/pair.cc:598] Connection closed by peer [127.0.0.1]:4100" -> "Connection closed by peer [127.0.0.1]:4100"
std::string withoutLocation(const std::string& message) {
  if (!message.empty() && message[0] == '[') {
    const auto end = message.find("] ");
    if (end != std::string::npos) return message.substr(end + 2);
  }
  return message;
}

}  // namespace

ProcessGroup::ProcessGroup(GroupOptions options) : options_(std::move(options)) {
  worker_ = std::thread([this] { workerLoop(); });
}

ProcessGroup::~ProcessGroup() { shutdown(true); }

void ProcessGroup::enqueue(std::shared_ptr<Job> job, std::function<void()> onDone) {
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    if (stopping_) throw std::runtime_error("the process group was destroyed");
    queue_.emplace_back(std::move(job), std::move(onDone));
  }
  queueCv_.notify_one();
}

std::string ProcessGroup::wait(Job& job) {
  std::unique_lock<std::mutex> lock(job.mutex);
  job.cv.wait(lock, [&] { return job.done; });
  return job.error;
}

void ProcessGroup::workerLoop() {
  for (;;) {
    std::pair<std::shared_ptr<Job>, std::function<void()>> next;
    {
      std::unique_lock<std::mutex> lock(queueMutex_);
      queueCv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {  // stopping, and everything queued has run
        workerExited_ = true;
        workerExitedCv_.notify_all();
        return;
      }
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    auto& job = *next.first;
    std::string error;
    {
      std::lock_guard<std::mutex> lock(lostMutex_);
      if (!lostDetail_.empty()) error = "mx.distributed: " + job.name + " on rank " + std::to_string(options_.rank) + " failed: " + lostDetail_;
    }
    if (error.empty()) {
      inFlight_ = true;
      try {
        job.run();
      } catch (const std::exception& e) {
        error = describeFailure(job.name, withoutLocation(e.what()));
      }
      inFlight_ = false;
    }
    {
      std::lock_guard<std::mutex> lock(job.mutex);
      job.error = error;
      job.done = true;
    }
    job.cv.notify_all();
    if (next.second) next.second();
  }
}

std::string ProcessGroup::describeFailure(const std::string& op, const std::string& gloo) {
  const std::string where = "mx.distributed: " + op + " on rank " + std::to_string(options_.rank) + " failed: ";
  const bool timedOut = gloo.find("Timed out") != std::string::npos;
  std::unique_lock<std::mutex> lock(lostMutex_);
  if (!timedOut && connected_) {
    // A broken connection reaches the heartbeat of that peer in the same moment: let it name the rank.
    lostCv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return !lostDetail_.empty(); });
  }
  if (!lostDetail_.empty()) return where + lostDetail_;
  std::string message = timedOut ? "timed out after " + std::to_string(options_.timeout.count()) +
                                       " ms waiting for another rank (is one stalled, or much slower? initProcessGroup's timeoutMs sets the limit): " + gloo
                                 : gloo;
  // Gloo closes every connection after a failed collective: the group is unusable from here on.
  if (connected_) lostDetail_ = "an earlier " + op + " failed: " + message;
  return where + message;
}

void ProcessGroup::startHeartbeats() {
  heartbeatBytes_.assign(options_.size, 0);
  for (int peer = 0; peer < options_.size; peer++) {
    if (peer == options_.rank) continue;
    auto buffer = context_->createUnboundBuffer(&heartbeatBytes_[peer], 1);
    // Never sent to: this receive stays pending until its pair fails (or shutdown aborts it).
    buffer->recv(peer, kHeartbeatSlot);
    auto* raw = buffer.get();
    heartbeats_.push_back(std::move(buffer));
    heartbeatThreads_.emplace_back([this, raw, peer] {
      try {
        raw->waitRecv(nullptr, kForever);
      } catch (const std::exception& e) {
        onPeerError(peer, withoutLocation(e.what()));
      }
    });
  }
}

void ProcessGroup::onPeerError(int peer, const std::string& message) {
  // Gloo closes every pair after a local timeout or our abort: that is no lost peer.
  if (message.find("Application timeout") != std::string::npos) return;
  {
    std::lock_guard<std::mutex> lock(lostMutex_);
    if (!lostDetail_.empty()) return;
    lostDetail_ = "rank " + std::to_string(peer) + " is gone (" + message + ")";
  }
  lostCv_.notify_all();
  // A collective may be waiting on a peer that is alive but itself stuck: fail it now.
  if (inFlight_) abortInFlight();
}

void ProcessGroup::abortInFlight() {
  // Gloo fails every pair of a context when a receive times out (UnboundBuffer::waitRecv): a
  // receive that cannot complete, given 1 ms, interrupts whatever is in flight, with public calls only.
  for (int peer = 0; peer < options_.size; peer++) {
    if (peer == options_.rank) continue;
    char byte = 0;
    try {
      auto buffer = context_->createUnboundBuffer(&byte, 1);
      buffer->recv(peer, kAbortSlot);
      buffer->waitRecv(nullptr, std::chrono::milliseconds(1));
    } catch (const std::exception& e) {
      if (std::string(e.what()).find("Timed out") != std::string::npos) return;
      // this peer's pair had already failed: try the next one
    }
  }
}

void ProcessGroup::shutdown(bool abort) {
  {
    std::lock_guard<std::mutex> lock(queueMutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
    if (abort) {
      // Jobs not started fail; the one in flight is interrupted below.
      for (auto& [job, onDone] : queue_) {
        {
          std::lock_guard<std::mutex> jl(job->mutex);
          job->error = "mx.distributed: the process group was destroyed before " + job->name + " ran";
          job->done = true;
        }
        job->cv.notify_all();
        if (onDone) onDone();
      }
      queue_.clear();
    }
  }
  queueCv_.notify_all();
  if (abort && inFlight_ && connected_) abortInFlight();
  if (worker_.joinable()) {
    if (abort) {
      // At process exit a worker still inside a rendezvous (which has its own timeout) must not
      // hold the exit up: give it a moment, then leave it.
      std::unique_lock<std::mutex> lock(queueMutex_);
      if (!workerExitedCv_.wait_for(lock, std::chrono::seconds(2), [&] { return workerExited_; })) {
        lock.unlock();
        worker_.detach();
        detached_ = true;
        return;
      }
    }
    worker_.join();
  }
  for (auto& heartbeat : heartbeats_) heartbeat->abortWaitRecv();
  for (auto& thread : heartbeatThreads_) thread.join();
  heartbeatThreads_.clear();
  heartbeats_.clear();
  context_.reset();
  device_.reset();
  store_.reset();
}

void ProcessGroup::connect() {
  std::unique_ptr<gloo::rendezvous::Store> base;
  if (options_.storeKind == "tcp") {
    base = std::make_unique<TcpStore>(options_.storeHost, options_.storePort, options_.timeout);
  } else if (options_.storeKind == "file") {
    base = std::make_unique<gloo::rendezvous::FileStore>(options_.storePath);
  } else if (options_.storeKind == "redis") {
    base = std::make_unique<gloo::rendezvous::RedisStore>(options_.storeHost, options_.storePort);
  } else {
    throw std::invalid_argument("unknown store '" + options_.storeKind + "'");
  }
  // PrefixStore keeps a reference to the store it wraps: keep both.
  struct Prefixed : gloo::rendezvous::PrefixStore {
    Prefixed(const std::string& prefix, std::unique_ptr<gloo::rendezvous::Store> inner)
        : gloo::rendezvous::PrefixStore(prefix, *inner), owned(std::move(inner)) {}
    std::unique_ptr<gloo::rendezvous::Store> owned;
  };
  store_ = std::make_unique<Prefixed>(options_.prefix, std::move(base));

  gloo::transport::tcp::attr attr;
  attr.hostname = options_.hostname;
  device_ = gloo::transport::tcp::CreateDevice(attr);
  context_ = std::make_shared<gloo::rendezvous::Context>(options_.rank, options_.size);
  context_->setTimeout(options_.timeout);
  context_->connectFullMesh(*store_, device_);
  startHeartbeats();
  connected_ = true;
}

void ProcessGroup::allReduce(void* data, size_t count, DType dtype, ReduceOp op) {
  if (count > 0 && options_.size > 1) {
    gloo::AllreduceOptions opts(context_);
    opts.setTag(nextTag());
    opts.setTimeout(options_.timeout);
    switch (elementSize(dtype)) {
      case 8: opts.setOutput(static_cast<double*>(data), count); break;
      case 4: opts.setOutput(static_cast<float*>(data), count); break;
      default: opts.setOutput(static_cast<uint16_t*>(data), count); break;
    }
    opts.setReduceFunction(reduceFunction(dtype, op));
    gloo::allreduce(opts);
  }
  if (op == ReduceOp::Avg) divideInPlace(data, count, dtype, options_.size);
}

void ProcessGroup::broadcast(void* data, size_t bytes, int root) {
  if (bytes == 0 || options_.size == 1) return;
  gloo::BroadcastOptions opts(context_);
  opts.setTag(nextTag());
  opts.setTimeout(options_.timeout);
  opts.setRoot(root);
  opts.setOutput(static_cast<uint8_t*>(data), bytes);
  gloo::broadcast(opts);
}

void ProcessGroup::allGather(const void* input, void* output, size_t bytesPerRank) {
  if (bytesPerRank == 0) return;
  if (options_.size == 1) {
    std::memcpy(output, input, bytesPerRank);
    return;
  }
  gloo::AllgatherOptions opts(context_);
  opts.setTag(nextTag());
  opts.setTimeout(options_.timeout);
  opts.setInput(const_cast<uint8_t*>(static_cast<const uint8_t*>(input)), bytesPerRank);
  opts.setOutput(static_cast<uint8_t*>(output), bytesPerRank * options_.size);
  gloo::allgather(opts);
}

namespace {

template <typename T>
void runReduceScatter(const std::shared_ptr<gloo::Context>& context, void* data, size_t countPerRank, ReduceFn fn) {
  // The algorithm's reduction is old-style (in place, two operands): adapt the three-operand one.
  static thread_local ReduceFn current = nullptr;
  current = fn;
  const gloo::ReductionFunction<T> reduction(gloo::CUSTOM, [](T* x, const T* y, size_t n) { current(x, x, y, n); });
  std::vector<T*> ptrs{static_cast<T*>(data)};
  std::vector<int> counts(context->size, static_cast<int>(countPerRank));
  gloo::ReduceScatterHalvingDoubling<T> algorithm(context, ptrs, static_cast<int>(countPerRank * context->size), counts, &reduction);
  algorithm.run();
}

}  // namespace

void ProcessGroup::reduceScatter(void* data, size_t countPerRank, DType dtype, ReduceOp op) {
  if (countPerRank > 0 && options_.size > 1) {
    const ReduceFn fn = reduceFunction(dtype, op);
    switch (elementSize(dtype)) {
      case 8: runReduceScatter<double>(context_, data, countPerRank, fn); break;
      case 4: runReduceScatter<float>(context_, data, countPerRank, fn); break;
      default: runReduceScatter<uint16_t>(context_, data, countPerRank, fn); break;
    }
  }
  if (op == ReduceOp::Avg) divideInPlace(data, countPerRank, dtype, options_.size);
}

void ProcessGroup::barrier() {
  if (options_.size == 1) return;
  gloo::BarrierOptions opts(context_);
  opts.setTag(nextTag());
  opts.setTimeout(options_.timeout);
  gloo::barrier(opts);
}

void ProcessGroup::averageBucket(float* data, size_t count, Compression compression) {
  const float divisor = static_cast<float>(options_.size);
  // Divide first, as PyTorch's reducer does: the sum of the averages cannot overflow where the sum could.
  for (size_t i = 0; i < count; i++) data[i] /= divisor;
  if (compression == Compression::None) {
    allReduce(data, count, DType::Float32, ReduceOp::Sum);
    return;
  }
  // One scratch buffer per group, kept: a fresh one per bucket costs a page fault per 4 KB.
  if (wire_.size() < count) wire_.resize(count);
  uint16_t* wire = wire_.data();
  const bool half = compression == Compression::Float16;
  if (half) floatsToHalves(data, wire, count);
  else floatsToBfloat16(data, wire, count);
  allReduce(wire, count, half ? DType::Float16 : DType::BFloat16, ReduceOp::Sum);
  if (half) halvesToFloats(wire, data, count);
  else bfloat16ToFloats(wire, data, count);
}

}  // namespace mixprec
