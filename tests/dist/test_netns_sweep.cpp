// test_netns_sweep.cpp - a sweep on two hosts on one machine: two network namespaces joined by a veth pair, a
// throwaway PostgreSQL server inside namespace A listening only on A's veth address, one `nfscale sweep` worker in
// each namespace (each in its own UTS namespace with its own host name, so worker ids name two hosts) against that
// one server with --db postgresql://..., and host B's worker killed with SIGKILL mid-trial (its runs hang after step 2
// through the NFSCALE_TEST_HANG_AFTER_STEP test hook, so the kill lands mid-trial however fast the machine). Every trial ends done
// exactly once: B's trial goes stale (--stale-after) and host A's worker retries it from B's checkpoint in the
// shared study folder, ending with the held-out loss of an uninterrupted run of that trial. The test watches the
// server through its Unix socket (outside the namespaces) and prints which worker did which trial. Skips (saying
// why) where namespaces or PostgreSQL's server programs are missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <tuple>

#include "../store/store_test_util.h"
#include "dist_test_util.h"
#include "netns_util.h"
#include "nfscale/store/results_store.h"
#include "nfscale/util/error.h"
#include "nfscale/util/process.h"

namespace nfscale::dist {
namespace {
using namespace testing;
namespace fs = std::filesystem;

// The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), or "".
std::string pg_bin_dir() {
  if (!fs::exists("/usr/lib/postgresql")) return "";
  for (auto& e : fs::directory_iterator("/usr/lib/postgresql"))
    if (fs::exists(e.path() / "bin" / "initdb") && fs::exists(e.path() / "bin" / "pg_ctl"))
      return (e.path() / "bin").string();
  return "";
}

// A throwaway PostgreSQL cluster whose server runs inside namespace `ns`, listening on `addr`:5432 there (trust
// for the superuser from `subnet`.0/24) and on a Unix socket in its folder, which the test (outside the namespaces)
// uses to watch. Stopped and deleted on destruction; `skip_reason` says why it could not be started.
struct NamespacePostgres {
  std::string bin, dir, skip_reason;
  bool started = false;

  NamespacePostgres(const TwoHosts& hosts, const std::string& ns, const std::string& addr, const std::string& subnet) {
    bin = pg_bin_dir();
    if (bin.empty()) {
      skip_reason = "no PostgreSQL server programs (/usr/lib/postgresql/*/bin/initdb): scripts/setup.sh installs "
                    "Debian's postgresql";
      return;
    }
    if (!sh("id -u postgres")) {
      skip_reason = "no `postgres` system user (Debian's postgresql package creates it)";
      return;
    }
    char tmpl[] = "/tmp/nfscale-pgns.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      skip_reason = "cannot make a temporary folder for the cluster";
      return;
    }
    dir = tmpl;
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    const std::string as_pg = "runuser -u postgres -- ";
    if (!sh("chown postgres:postgres " + dir) ||
        !sh(as_pg + bin + "/initdb -D " + dir + "/data -U postgres --auth-local=trust -E UTF8 --locale=C.UTF-8")) {
      skip_reason = "initdb as user postgres failed in " + dir;
      return;
    }
    std::ofstream(dir + "/pg_hba.conf") << "local all postgres trust\nhost all postgres " << subnet
                                        << ".0/24 trust\n";
    sh("chown postgres:postgres " + dir + "/pg_hba.conf");
    std::string cmd;
    for (const auto& a : hosts.exec_in(ns)) cmd += a + " ";
    cmd += as_pg + bin + "/pg_ctl -D " + dir + "/data -l " + dir + "/server.log -w -t 60 start -o \"-k " + dir +
           " -c listen_addresses=" + addr + " -p 5432 -c hba_file=" + dir +
           "/pg_hba.conf -c fsync=off -c full_page_writes=off -c synchronous_commit=off\"";
    if (!sh(cmd)) {
      skip_reason = "the PostgreSQL server did not start inside the namespace (" + dir + "/server.log)";
      return;
    }
    started = true;
  }
  ~NamespacePostgres() {
    if (started) sh("runuser -u postgres -- " + bin + "/pg_ctl -D " + dir + "/data -m immediate -w stop");
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
  // The superuser's URI over the Unix socket (for the test, outside the namespaces).
  std::string socket_uri() const { return "postgresql://postgres@/postgres?host=" + dir; }
};

// Training-step lines logged so far in <dir>/metrics.jsonl (counted, not parsed: the last line may be half written).
int steps_logged(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find("\"type\":\"train\"") != std::string::npos;
  return n;
}

// The study's trials, or none while its store does not exist yet (worker A creates it).
std::vector<store::Trial> trials_now(const std::string& uri) {
  try {
    return store::open_results_store(uri, store::OpenMode::MustExist)->trials("ns");
  } catch (const UserError&) {
    return {};
  }
}

TEST(DistNetns, SweepWorkersOnTwoHostsShareOnePostgresServerAndAKilledWorkersTrialIsRetriedOnce) {
  NFSCALE_REQUIRE_BINARY();
  TwoHosts hosts("nfq", "10.213.8");
  if (!hosts.skip_reason.empty()) GTEST_SKIP() << hosts.skip_reason;
  if (!fs::exists("/usr/bin/unshare")) GTEST_SKIP() << "util-linux's unshare is missing (it gives each worker a host name)";
  NamespacePostgres pg(hosts, hosts.a, hosts.addr_a, "10.213.8");
  if (!pg.skip_reason.empty()) GTEST_SKIP() << pg.skip_reason;

  // 1 model x 2 budgets x 3 LRs; a checkpoint and a log line every step, so a killed trial resumes mid-way.
  const std::string dir = fresh_dir("netns_sweep");
  const nlohmann::json study{
      {"name", "ns"},
      {"models", {"mini-F0"}},
      {"epochs", {0.25, 0.5}},
      {"lrs", {0.2, 0.4, 0.8}},
      {"seeds", {0}},
      {"out_dir", dir + "/study"},  // the shared study folder (one file system, as NFS would be)
      {"train",
       {{"data", "digits"}, {"holdout", 200}, {"resolution", 24}, {"batch", 32}, {"eval_points", 2},
        {"checkpoint_steps", 1}, {"log_every", 1}, {"precision", "fp32"}}}};
  std::ofstream(dir + "/study.json") << study.dump(2);
  const std::string db = "postgresql://postgres@" + hosts.addr_a + ":5432/postgres";  // over the veth pair
  const double stale_after = 6;
  // hang_after: 0, or the step after which this worker's runs hang (NFSCALE_TEST_HANG_AFTER_STEP) until killed.
  auto worker = [&](const std::string& ns, const std::string& host, int hang_after) {
    std::vector<std::string> args = hosts.exec_in(ns);
    const std::vector<std::string> tail{"/usr/bin/env", "NFSCALE_TEST_HANG_AFTER_STEP=" + std::to_string(hang_after),
                                        "/usr/bin/unshare", "--uts", "/bin/sh", "-c", "hostname \"$0\" && exec \"$@\"",
                                        host, binary_path(), "--threads", "1", "sweep", "--study-file",
                                        dir + "/study.json", "--preset", "smoke", "--db", db, "--stale-after",
                                        std::to_string(stale_after)};
    args.insert(args.end(), tail.begin(), tail.end());
    SpawnOptions so;
    so.stderr_path = dir + "/" + host + ".err";
    so.stdout_path = dir + "/" + host + ".out";
    return spawn_process(args, so);
  };
  const auto t0 = std::chrono::steady_clock::now();
  // Polls the server (every 100 ms, up to 120 s from t0) until `pick` accepts a trial; returns it.
  auto wait_for = [&](const std::function<bool(const store::Trial&)>& pick) -> std::optional<store::Trial> {
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
      for (const auto& t : trials_now(pg.socket_uri()))
        if (pick(t)) return t;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::nullopt;
  };

  // Host B's worker registers the study and claims a trial, whose runs hang after step 2 (their checkpoint written):
  // it is killed there, mid-trial, however fast the trials are on this machine.
  const pid_t b = worker(hosts.b, "nfs-hostB", 2);
  const auto b_trial = wait_for([&](const store::Trial& t) {
    return t.status == store::TrialStatus::Running && t.worker_id.rfind("nfs-hostB:", 0) == 0 && !t.run_dir.empty() &&
           steps_logged(t.run_dir) >= 2;
  });
  if (!b_trial) signal_process(b, SIGKILL);  // never leave a hung worker behind a failed assertion
  ASSERT_TRUE(b_trial.has_value()) << "host B's worker never trained a trial: " << slurp(dir + "/nfs-hostB.err");
  ASSERT_EQ(trials_now(pg.socket_uri()).size(), 6u) << slurp(dir + "/nfs-hostB.err");
  // Host A's worker joins once B has registered the study (registering is idempotent, but not meant to race).
  const pid_t a = worker(hosts.a, "nfs-hostA", 0);
  // Once A has claimed a trial (running or already done), see who is connected, then kill B (still hanging two
  // steps into its trial; its heartbeat keeps the claim fresh until then).
  const auto a_trial =
      wait_for([](const store::Trial& t) { return t.worker_id.rfind("nfs-hostA:", 0) == 0; });
  std::set<std::string> clients;
  const std::string sql = "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE client_addr IS NOT NULL";
  for (const auto& row : store::test_util::pg_query(pg.socket_uri(), sql)) clients.insert(row[0]);
  signal_process(b, SIGKILL);
  const int64_t killed_trial = b_trial->id;
  const std::string killed_worker = b_trial->worker_id;
  std::printf("[ info ] killed worker %s (SIGKILL) %d steps into trial %lld (epochs %g, lr %g)\n",
              killed_worker.c_str(), steps_logged(b_trial->run_dir), (long long)killed_trial, b_trial->spec.epochs,
              b_trial->spec.lr);
  wait_process(b);
  EXPECT_TRUE(a_trial.has_value()) << "host A's worker never claimed a trial: " << slurp(dir + "/nfs-hostA.err");
  const int code_a = wait_process(a);
  const std::string log_a = slurp(dir + "/nfs-hostA.err");
  ASSERT_EQ(code_a, 0) << log_a;

  // Both hosts reached the server over the veth pair (the server listens on nothing else but its socket).
  std::string seen;
  for (const auto& c : clients) seen += (seen.empty() ? "" : ", ") + c;
  EXPECT_TRUE(clients.count(hosts.addr_b)) << "no connection from host B's address; seen: " << seen;
  std::printf("[ info ] PostgreSQL in namespace %s on %s:5432; client addresses seen: %s\n", hosts.a.c_str(),
              hosts.addr_a.c_str(), seen.c_str());

  const auto trials = trials_now(pg.socket_uri());
  ASSERT_EQ(trials.size(), 6u);
  std::set<std::tuple<double, double>> keys;
  for (const auto& t : trials) {
    keys.insert({t.spec.epochs, t.spec.lr});
    EXPECT_EQ(t.status, store::TrialStatus::Done) << "trial " << t.id << ": " << t.error;
    EXPECT_TRUE(t.result.has_value()) << "trial " << t.id;
    const bool retried = t.id == killed_trial;
    EXPECT_EQ(t.attempts, retried ? 2 : 1) << "trial " << t.id;
    if (retried) {
      EXPECT_EQ(t.worker_id.rfind("nfs-hostA:", 0), 0u) << "the killed trial was finished by " << t.worker_id;
    }
    std::printf("[ info ] trial %lld (epochs %g, lr %g): done by %s, attempts %d%s, held-out loss %.6g\n",
                (long long)t.id, t.spec.epochs, t.spec.lr, t.worker_id.c_str(), t.attempts,
                retried ? (" (first claim: " + killed_worker + ", killed; retried after its claim went stale)").c_str()
                        : "",
                t.result ? t.result->holdout_loss : 0.0);
  }
  EXPECT_EQ(keys.size(), 6u) << "a trial was duplicated";

  // The retried trial ends where an uninterrupted run of it does: its stored configuration trained once more in one
  // process (same thread count) gives the same held-out loss, bit for bit.
  for (const auto& t : trials) {
    if (t.id != killed_trial || !t.result) continue;
    const std::string ref = dir + "/uninterrupted";
    const CliResult r = run_cli({"--threads", "1", "train", "--config", t.run_dir + "/config.json", "--run-dir", ref,
                                 "--quiet"},
                                dir);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto res = nlohmann::json::parse(slurp(ref + "/result.json"));
    const double uninterrupted = res.at("final_eval").at("holdout").at("loss").get<double>();
    EXPECT_EQ(t.result->holdout_loss, uninterrupted) << "the trial resumed on host A from host B's checkpoint";
    std::printf("[ info ] trial %lld resumed across hosts: held-out loss %.17g, uninterrupted run %.17g\n",
                (long long)t.id, t.result->holdout_loss, uninterrupted);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nfscale::dist
