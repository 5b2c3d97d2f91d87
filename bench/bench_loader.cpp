// bench_loader.cpp - data-loader throughput (images/s): Fashion-MNIST at 32 px with the default training
// augmentation (random-resized crop, flip, RandAugment 4x5, MixUp/CutMix, label smoothing), 1 and 2 threads.
// A training step on this machine consumes ~700 img/s; the loader must stay well above that.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "nfscale/data/dataset.h"
#include "nfscale/data/loader.h"
#include "nfscale/data/readers.h"

#include "bench_main.h"

using namespace nfscale::data;

static void BM_LoaderFashionMnist32(benchmark::State& state) {
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz")) {
    state.SkipWithError("Fashion-MNIST not installed");
    return;
  }
  static auto ds = open_dataset(parse_data_spec("fashion-mnist"));
  LoaderOptions o;
  o.batch_size = 256;
  o.threads = static_cast<int>(state.range(0));
  o.prefetch = 4;
  o.resolution = 32;
  o.channels = static_cast<int64_t>(state.range(1));
  default_normalisation("fashion-mnist", o.channels == 0 ? 1 : o.channels, o.augment.mean, o.augment.std);
  Loader loader(ds, {}, o);
  int64_t images = 0;
  for (auto _ : state) {
    Batch b = loader.next();
    images += b.size();
    benchmark::DoNotOptimize(b.images.data_ptr());
  }
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LoaderFashionMnist32)->Args({1, 0})->Args({2, 0})->Args({2, 3})->UseRealTime()->MinTime(3.0);

NFSCALE_BENCHMARK_MAIN()
