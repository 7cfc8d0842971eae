// The N-API face of the Gloo process group (src/distributed/native.ts loads it).
//
//   const group = new GlooGroup({ rank, size, timeoutMs, store, host, port, path, prefix, hostname });
//   await group.connect();
//   await group.allReduce(typedArray, 'float32', 'sum', false);      // a promise, in place
//   const id = group.averageBucket(float32Array, 'fp16', true);       // a job id ...
//   group.wait(id);                                                    // ... waited for synchronously
//
// Every collective runs on the group's worker thread; the typed arrays stay referenced until their
// job is done. Promises settle through a thread-safe function, referenced only while one is
// pending so that an idle group never keeps Node alive.
#include <napi.h>

#include <memory>
#include <unordered_map>

#include "process_group.h"

namespace mixprec {

namespace {

struct Pending {
  std::shared_ptr<Job> job;
  std::vector<Napi::ObjectReference> keep;
  std::unique_ptr<Napi::Promise::Deferred> deferred;
};

// Main-thread state shared by the group object and the thread-safe function's callbacks.
struct MainThreadState {
  std::unordered_map<uint64_t, Pending> pending;
  uint64_t nextId = 1;
  // Promises not yet settled: the thread-safe function keeps Node alive only while there are some.
  size_t promises = 0;
  napi_threadsafe_function notifier = nullptr;
  bool finalized = false;
};

void settle(Napi::Env env, Napi::Function, std::shared_ptr<MainThreadState>* state, uint64_t* id);
using Notifier = Napi::TypedThreadSafeFunction<std::shared_ptr<MainThreadState>, uint64_t, settle>;

void settle(Napi::Env env, Napi::Function, std::shared_ptr<MainThreadState>* statePtr, uint64_t* idPtr) {
  const uint64_t id = *idPtr;
  delete idPtr;
  if (env == nullptr || statePtr == nullptr) return;
  auto& state = **statePtr;
  auto it = state.pending.find(id);
  if (it == state.pending.end()) return;
  Pending pending = std::move(it->second);
  state.pending.erase(it);
  if (--state.promises == 0) napi_unref_threadsafe_function(env, state.notifier);
  Napi::HandleScope scope(env);
  if (pending.job->error.empty()) pending.deferred->Resolve(env.Undefined());
  else pending.deferred->Reject(Napi::Error::New(env, pending.job->error).Value());
}

struct Reduction {
  DType dtype;
  ReduceOp op;
};

// The dtype and op arguments of a reduction (info[1], info[2]), checked.
Reduction reductionArgs(const Napi::CallbackInfo& info, const std::string& name) {
  Reduction r;
  try {
    r = {parseDType(info[1].As<Napi::String>().Utf8Value()), parseReduceOp(info[2].As<Napi::String>().Utf8Value())};
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(info.Env(), "mx.distributed: " + name + ": " + e.what());
  }
  if (r.op == ReduceOp::Avg && r.dtype == DType::Int32) {
    throw Napi::TypeError::New(info.Env(), "mx.distributed: " + name + " op 'avg' needs a floating tensor, got int32 (use 'sum')");
  }
  return r;
}

// The bytes of a typed array (never a view of shared memory: the JavaScript side copies first).
struct Bytes {
  void* data;
  size_t size;
};

Bytes bytesOf(const Napi::Value& v) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), "expected a typed array");
  auto ta = v.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return {base + ta.ByteOffset(), ta.ByteLength()};
}

}  // namespace

class GlooGroup : public Napi::ObjectWrap<GlooGroup> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "GlooGroup",
                                      {
                                          InstanceMethod<&GlooGroup::Connect>("connect"),
                                          InstanceMethod<&GlooGroup::AllReduce>("allReduce"),
                                          InstanceMethod<&GlooGroup::Broadcast>("broadcast"),
                                          InstanceMethod<&GlooGroup::AllGather>("allGather"),
                                          InstanceMethod<&GlooGroup::ReduceScatter>("reduceScatter"),
                                          InstanceMethod<&GlooGroup::Barrier>("barrier"),
                                          InstanceMethod<&GlooGroup::AverageBucket>("averageBucket"),
                                          InstanceMethod<&GlooGroup::Wait>("wait"),
                                          InstanceMethod<&GlooGroup::Destroy>("destroy"),
                                      });
    exports.Set("GlooGroup", ctor);
    return exports;
  }

  explicit GlooGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GlooGroup>(info) {
    Napi::Env env = info.Env();
    auto o = info[0].As<Napi::Object>();
    GroupOptions options;
    options.rank = o.Get("rank").As<Napi::Number>().Int32Value();
    options.size = o.Get("size").As<Napi::Number>().Int32Value();
    options.timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
    options.storeKind = o.Get("store").As<Napi::String>().Utf8Value();
    if (o.Has("host")) options.storeHost = o.Get("host").As<Napi::String>().Utf8Value();
    if (o.Has("port")) options.storePort = o.Get("port").As<Napi::Number>().Int32Value();
    if (o.Has("path")) options.storePath = o.Get("path").As<Napi::String>().Utf8Value();
    options.prefix = o.Get("prefix").As<Napi::String>().Utf8Value();
    options.hostname = o.Get("hostname").As<Napi::String>().Utf8Value();
    state_ = std::make_shared<MainThreadState>();
    auto* context = new std::shared_ptr<MainThreadState>(state_);
    notifier_ = Notifier::New(env, "mixprec.gloo", 0, 1, context, [](Napi::Env, void*, std::shared_ptr<MainThreadState>* ctx) {
      (*ctx)->finalized = true;
      delete ctx;
    });
    notifier_.Unref(env);
    state_->notifier = notifier_;
    group_ = std::make_unique<ProcessGroup>(options);
  }

  ~GlooGroup() override { release(true); }

 private:
  // Queue `run` as job `name`; with `sync` return its id for wait(), else a promise.
  Napi::Value submit(const Napi::CallbackInfo& info, const std::string& name, std::function<void()> run, bool sync,
                     std::vector<Napi::Value> keep) {
    Napi::Env env = info.Env();
    if (!group_) throw Napi::Error::New(env, "mx.distributed: the process group was destroyed");
    auto job = std::make_shared<Job>();
    job->name = name;
    job->run = std::move(run);
    const uint64_t id = state_->nextId++;
    Pending pending;
    pending.job = job;
    for (auto& v : keep) pending.keep.push_back(Napi::Persistent(v.As<Napi::Object>()));
    Napi::Value result;
    std::function<void()> onDone;
    if (sync) {
      result = Napi::Number::New(env, static_cast<double>(id));
    } else {
      pending.deferred = std::make_unique<Napi::Promise::Deferred>(env);
      result = pending.deferred->Promise();
      if (state_->promises++ == 0) notifier_.Ref(env);
      Notifier notifier = notifier_;
      onDone = [notifier, id]() mutable { notifier.NonBlockingCall(new uint64_t(id)); };
    }
    state_->pending.emplace(id, std::move(pending));
    try {
      group_->enqueue(job, onDone);
    } catch (const std::exception& e) {
      state_->pending.erase(id);
      if (!sync && --state_->promises == 0) notifier_.Unref(env);
      throw Napi::Error::New(env, std::string("mx.distributed: ") + e.what());
    }
    return result;
  }

  static bool syncArg(const Napi::CallbackInfo& info, size_t i) { return info.Length() > i && info[i].ToBoolean().Value(); }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    ProcessGroup* g = group_.get();
    return submit(info, "initProcessGroup", [g] { g->connect(); }, false, {});
  }

  // allReduce and reduceScatter: (typedArray, dtype, op, sync), in place; `ranksPerCount`: the
  // array holds that many blocks of `count` elements.
  template <typename Run>
  Napi::Value reduction(const Napi::CallbackInfo& info, const std::string& name, size_t ranksPerCount, Run run) {
    const Bytes b = bytesOf(info[0]);
    const Reduction r = reductionArgs(info, name);
    const size_t count = b.size / elementSize(r.dtype) / ranksPerCount;
    ProcessGroup* g = group_.get();
    return submit(info, name, [g, b, count, r, run] { run(*g, b.data, count, r.dtype, r.op); }, syncArg(info, 3), {info[0]});
  }

  Napi::Value AllReduce(const Napi::CallbackInfo& info) {
    return reduction(info, "allReduce", 1, [](ProcessGroup& g, void* data, size_t n, DType t, ReduceOp op) { g.allReduce(data, n, t, op); });
  }

  Napi::Value Broadcast(const Napi::CallbackInfo& info) {
    const Bytes b = bytesOf(info[0]);
    const int root = info[1].As<Napi::Number>().Int32Value();
    ProcessGroup* g = group_.get();
    return submit(info, "broadcast", [g, b, root] { g->broadcast(b.data, b.size, root); }, syncArg(info, 2), {info[0]});
  }

  Napi::Value AllGather(const Napi::CallbackInfo& info) {
    const Bytes in = bytesOf(info[0]);
    const Bytes out = bytesOf(info[1]);
    ProcessGroup* g = group_.get();
    if (out.size != in.size * static_cast<size_t>(g->size())) {
      throw Napi::RangeError::New(info.Env(), "mx.distributed: allGather output must hold worldSize x the input's bytes");
    }
    return submit(info, "allGather", [g, in, out] { g->allGather(in.data, out.data, in.size); }, syncArg(info, 2), {info[0], info[1]});
  }

  Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
    const size_t ranks = group_ ? static_cast<size_t>(group_->size()) : 1;
    return reduction(info, "reduceScatter", ranks, [](ProcessGroup& g, void* data, size_t n, DType t, ReduceOp op) { g.reduceScatter(data, n, t, op); });
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    ProcessGroup* g = group_.get();
    return submit(info, "barrier", [g] { g->barrier(); }, syncArg(info, 0), {});
  }

  Napi::Value AverageBucket(const Napi::CallbackInfo& info) {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(info.Env(), "averageBucket: expected a Float32Array");
    }
    const Bytes b = bytesOf(info[0]);
    const std::string mode = info[1].As<Napi::String>().Utf8Value();
    const Compression compression = mode == "fp16" ? Compression::Float16 : mode == "bf16" ? Compression::BFloat16 : Compression::None;
    ProcessGroup* g = group_.get();
    auto* data = static_cast<float*>(b.data);
    const size_t count = b.size / 4;
    return submit(info, "DistributedDataParallel gradient all-reduce", [g, data, count, compression] { g->averageBucket(data, count, compression); },
                  syncArg(info, 2), {info[0]});
  }

  // Blocks the calling (main) thread until job `id` is done; throws its error.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto id = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    auto it = state_->pending.find(id);
    if (it == state_->pending.end() || it->second.deferred) throw Napi::Error::New(env, "mx.distributed: no synchronous job " + std::to_string(id));
    std::shared_ptr<Job> job = it->second.job;
    const std::string error = ProcessGroup::wait(*job);
    state_->pending.erase(id);
    if (!error.empty()) throw Napi::Error::New(env, error);
    return env.Undefined();
  }

  // Runs what is queued, then closes the connections.
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    release(false);
    return info.Env().Undefined();
  }

  void release(bool abort) {
    if (group_) {
      group_->shutdown(abort);
      if (abort && group_->stillRunning()) group_.release();  // a worker that would not stop: leave it (process exit)
      else group_.reset();
    }
    if (!released_ && !state_->finalized) notifier_.Release();
    released_ = true;
  }

  std::unique_ptr<ProcessGroup> group_;
  std::shared_ptr<MainThreadState> state_;
  Notifier notifier_;
  bool released_ = false;
};

}  // namespace mixprec

Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return mixprec::GlooGroup::Init(env, exports); }

NODE_API_MODULE(mixprec_gloo, InitModule)
