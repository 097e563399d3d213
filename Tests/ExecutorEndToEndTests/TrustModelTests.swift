import ChildProcesses
import Foundation
import JobIdentity
import TestSizes
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Run-as accounts exist (scripts/test creates them as root; CI always does).
enum Accounts {
  static let exist = getuid() == 0 && getpwnam("ci-alice") != nil && getpwnam("ci-bob") != nil
  static var required: Bool { Backend.inCI || exist }
  static var backends: [Backend] { required ? Backend.available : [] }
  /// The attacks run where the issue found them: the real Slurm.
  static var slurm: [Backend] { required ? Backend.slurmOnly : [] }
}

/// Plays GitLab's signing side: a key made for this test run, its JWKS where root keeps it.
enum TestGitLab {
  static let issuer = "https://gitlab.e2e.test"
  static let audience = "ci-slurm-e2e"
  static let minter = try! IDTokenMinter(privateKeyPEM: try! IDTokenMinter.generatePrivateKeyPEM(), keyID: "e2e")
  static let jwksFile: String = {
    let directory = NSTemporaryDirectory() + "ci-e2e-gitlab-\(getpid())"
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    let path = "\(directory)/jwks.json"
    FileManager.default.createFile(atPath: path, contents: Data(minter.jwksJSON.utf8), attributes: [.posixPermissions: 0o644])
    return path
  }()

  static func token(login: String, jobID: String, minter: IDTokenMinter = minter, expiresIn: TimeInterval = 3600) throws -> String {
    let now = Date()
    return try minter.mint(
      GitLabClaims(
        issuer: issuer, audience: [audience], expires: now.addingTimeInterval(expiresIn), notBefore: now.addingTimeInterval(-7200),
        issuedAt: now, jobID: jobID, userLogin: login, projectPath: "group/e2e"))
  }
}

extension DriverJob {
  static var runAsSettings: String {
    """
    [run_as]
    mode = "user"
    jwks_file = "\(TestGitLab.jwksFile)"
    issuer = "\(TestGitLab.issuer)"
    audience = "\(TestGitLab.audience)"
    [run_as.accounts]
    alice = "ci-alice"
    bob = "ci-bob"
    admin = "root"
    """
  }

  /// This job as GitLab user `login`: the run-as settings and the ID token GitLab would sign.
  func runAs(_ login: String, extraSettings: String = "") throws {
    try settings(extraSettings + DriverJob.runAsSettings, allowRoot: false)
    payloadVariables.append(("CI_SLURM_ID_TOKEN", try TestGitLab.token(login: login, jobID: jobID)))
  }

  var dataRoot: String { env["CI_SLURM_DATA_ROOT"]! }
}

/// A root-only file and directory a CI account must never read, own or write into.
struct Victim {
  let directory: String
  let file: String
  let secret = "root-only-\(UUID().uuidString)"

  init() throws {
    directory = NSTemporaryDirectory() + "ci-e2e-victim-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    file = "\(directory)/shadow"
    FileManager.default.createFile(atPath: file, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
  }

  func expectUnchanged(_ sourceLocation: SourceLocation = #_sourceLocation) throws {
    let attributes = try FileManager.default.attributesOfItem(atPath: file)
    #expect(attributes[.ownerAccountID] as? Int == 0, sourceLocation: sourceLocation)
    #expect(attributes[.posixPermissions] as? Int == 0o600, sourceLocation: sourceLocation)
    #expect(try String(contentsOfFile: file, encoding: .utf8) == secret, sourceLocation: sourceLocation)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["shadow"], sourceLocation: sourceLocation)
  }
}

@Suite(.tags(.large)) struct RunAsTests {
  @Test("CI has the run-as accounts", .enabled(if: Backend.inCI))
  func accountsExistInCI() {
    #expect(Accounts.exist, "scripts/test creates ci-alice and ci-bob as root")
  }

  @Test(arguments: Accounts.backends)
  func aJobRunsAsItsMappedAccount(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.runAs("alice")
    defer { try? job.cleanup() }
    var script = "echo \"user=$(id -un)\"\necho \"home=$HOME\""
    if backend == .slurm { script += "\nscontrol show job \"$SLURM_JOB_ID\" | grep -o 'UserId=[a-z-]*'" }
    let result = try job.runScript(script)
    #expect(result.status == .exited(0), "\(result.stderr)")
    var expected = "user=ci-alice\nhome=/home/ci-alice\n"
    if backend == .slurm { expected += "UserId=ci-alice\n" }
    #expect(result.stdout == expected)
    // Local stages (git, caches) run as the account too.
    let local = try job.phase("ci-run", [try job.script("id -un"), "get_sources"])
    #expect(local.stdout == "ci-alice\n")
    let builds = "\(job.dataRoot)/users/ci-alice/builds/\(job.jobID)"
    let attributes = try FileManager.default.attributesOfItem(atPath: builds)
    #expect(attributes[.ownerAccountName] as? String == "ci-alice")
    #expect(attributes[.posixPermissions] as? Int == 0o700)
    // Root's part made only the shared levels; they stay root's and unreadable.
    for shared in [job.dataRoot, "\(job.dataRoot)/users"] {
      let info = try FileManager.default.attributesOfItem(atPath: shared)
      #expect(info[.ownerAccountID] as? Int == 0)
      #expect(info[.posixPermissions] as? Int == 0o711)
    }
  }

  @Test(arguments: Accounts.backends)
  func oneAccountCannotReadAnothersBuilds(backend: Backend) throws {
    let alice = try DriverJob(backend)
    try alice.runAs("alice")
    defer { try? alice.cleanup() }
    #expect(try alice.runScript("echo secret-of-alice > \"$PWD/private.txt\"; pwd").status == .exited(0))
    let alicesFile = "\(alice.dataRoot)/users/ci-alice/builds/\(alice.jobID)/private.txt"
    #expect(FileManager.default.fileExists(atPath: alicesFile))

    let bob = try DriverJob(backend)
    bob.env["CI_SLURM_DATA_ROOT"] = alice.dataRoot
    try bob.runAs("bob")
    defer { try? bob.cleanup() }
    let result = try bob.runScript("cat \(alicesFile)")
    #expect(result.status == .exited(1))
    #expect(result.stdout.contains("Permission denied"))
    #expect(!result.stdout.contains("secret-of-alice"))
  }

  @Test(arguments: Accounts.required ? [("nobody-mapped", "is not mapped to a local account"), ("admin", "CI jobs never run as root")] : [])
  func unmappedUsersAndRootAreRefused(login: String, message: String) throws {
    let job = try DriverJob(.local)
    try job.runAs(login)
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr.contains(message), "\(prepare.stderr)")
    #expect(prepare.stderr.split(separator: "\n").count == 1)
  }

  /// GitLab puts a job's own `variables:` before the predefined user variables; the job's
  /// GITLAB_USER_LOGIN: bob must not make it bob's (issue #12, 2). Only the token counts.
  @Test(arguments: Accounts.slurm)
  func aJobVariableCannotImpersonateAnotherUser(backend: Backend) throws {
    let job = try DriverJob(backend)
    job.payloadVariables = [("GITLAB_USER_LOGIN", "bob"), ("GITLAB_USER_LOGIN", "alice")]
    job.env["CUSTOM_ENV_GITLAB_USER_LOGIN"] = "bob"
    try job.runAs("alice")
    defer { try? job.cleanup() }
    let result = try job.runScript("id -un")
    #expect(result.status == .exited(0), "\(result.stderr)")
    #expect(result.stdout == "ci-alice\n")
  }

  /// A job may add a variable named like the token: a token for another job, from another
  /// key, or text. None of them counts; GitLab's own token still does.
  @Test(.enabled(if: Accounts.required))
  func borrowedOrForgedTokensDoNotCount() throws {
    let job = try DriverJob(.local)
    let otherKey = try IDTokenMinter(privateKeyPEM: try IDTokenMinter.generatePrivateKeyPEM(), keyID: "e2e")
    try job.settings(DriverJob.runAsSettings, allowRoot: false)
    job.payloadVariables = [
      ("CI_SLURM_ID_TOKEN", try TestGitLab.token(login: "bob", jobID: "1")),
      ("CI_SLURM_ID_TOKEN", try TestGitLab.token(login: "bob", jobID: job.jobID, minter: otherKey)),
      ("CI_SLURM_ID_TOKEN", "bob"),
    ]
    let refused = try job.phase("ci-prepare")
    #expect(refused.status == .exited(1))
    #expect(refused.stderr == "run_as: refused the job's ID token (CI_SLURM_ID_TOKEN): the ID token belongs to job 1, not to this job (\(job.jobID))\n")
    job.payloadVariables.append(("CI_SLURM_ID_TOKEN", try TestGitLab.token(login: "alice", jobID: job.jobID)))
    defer { try? job.cleanup() }
    let result = try job.runScript("id -un")
    #expect(result.stdout == "ci-alice\n", "\(result.stderr)")
  }

  /// GitLab's token lives as long as the job's timeout: a job that ran out of time still
  /// gets its after_script, artifacts and cleanup as its account; a new job does not start.
  @Test(arguments: Accounts.slurm)
  func anExpiredTokenStopsNewJobsButNotTheEndOfOneThatRan(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.settings(DriverJob.runAsSettings, allowRoot: false)
    job.payloadVariables = [("CI_SLURM_ID_TOKEN", try TestGitLab.token(login: "alice", jobID: job.jobID, expiresIn: -600))]
    let refused = try job.phase("ci-prepare")
    #expect(refused.status == .exited(1))
    #expect(refused.stderr.contains("the ID token expired at"), "\(refused.stderr)")
    let run = try job.phase("ci-run", [try job.script("id -un"), "build_script"])
    #expect(run.stdout == "ci-alice\n", "\(run.stderr)")
    let cleanup = try job.phase("ci-cleanup")
    #expect(cleanup.status == .exited(0), "\(cleanup.stderr)")
    #expect(!FileManager.default.fileExists(atPath: "\(job.dataRoot)/users/ci-alice/jobs/\(job.jobID)"))
  }

  @Test(arguments: Accounts.slurm)
  func aJobWithoutATokenIsRefusedBeforeAnySlurmJob(backend: Backend) throws {
    let job = try DriverJob(backend)
    try job.settings(DriverJob.runAsSettings, allowRoot: false)
    job.env["CUSTOM_ENV_GITLAB_USER_LOGIN"] = "alice"
    for phase in ["ci-prepare", "ci-run"] {
      let result = try job.phase(phase, phase == "ci-run" ? [try job.script("echo never"), "build_script"] : [])
      #expect(result.status == .exited(1))
      #expect(result.stderr.hasPrefix("run_as: this job has no ID token in CI_SLURM_ID_TOKEN; add `id_tokens:"), "\(result.stderr)")
      #expect(result.stderr.split(separator: "\n").count == 1)
    }
    #expect(try job.liveSlurmJobs().isEmpty)
    #expect(job.exitCodeFile == "1\n")
  }
}

/// Issue #12, 1: a CI account points root at files through its own tree. The phases now
/// act there as the account, so each link leads only where the account could go anyway.
@Suite(.tags(.large)) struct SymlinkAttackTests {
  @Test(arguments: Accounts.slurm)
  func aLedgerLinkedToARootFileIsNotFollowed(backend: Backend) throws {
    let victim = try Victim()
    let job = try DriverJob(backend)
    try job.runAs("alice")
    job.env["CUSTOM_ENV_CI_PIPELINE_ID"] = String(Int.random(in: 100_000...999_999))
    defer { try? job.cleanup() }
    let result = try job.runScript("ln -sf \(victim.file) \"$CI_SLURM_JOBS_LEDGER\" && echo linked")
    #expect(result.stdout == "linked\n", "\(result.stderr)")
    try victim.expectUnchanged()
  }

  @Test(arguments: Accounts.slurm)
  func anArrayTasksOutputLinkedToARootFileIsNotStreamed(backend: Backend) throws {
    let victim = try Victim()
    let job = try DriverJob(backend, parameters: "--array=0-1%1")
    try job.runAs("alice")
    defer { try? job.cleanup() }
    // Task 0 plants output-1.log before task 1 starts (the %1 throttle orders them).
    let result = try job.runScript("""
      if [ "$SLURM_ARRAY_TASK_ID" = 0 ]; then
        ln -sf \(victim.file) "$(dirname "$(readlink /proc/$$/fd/1)")/output-1.log" && echo planted
      fi
      """)
    #expect(result.stdout.contains("[task 0] planted"), "\(result.stdout)\(result.stderr)")
    #expect(!result.stdout.contains(victim.secret) && !result.stderr.contains(victim.secret))
    try victim.expectUnchanged()
  }

  @Test(arguments: Accounts.slurm)
  func aLogsLinkToAnotherAccountDoesNotMakeTheSweepDeleteTheirFiles(backend: Backend) throws {
    let bob = try DriverJob(backend)
    try bob.runAs("bob")
    #expect(try bob.runScript("mkdir -p ../../keep && echo bobs-data > ../../keep/precious").status == .exited(0))
    try bob.cleanup()
    let precious = "\(bob.dataRoot)/users/ci-bob/keep/precious"
    #expect(FileManager.default.fileExists(atPath: precious))

    let alice = try DriverJob(backend)
    alice.env["CI_SLURM_DATA_ROOT"] = bob.dataRoot
    try alice.runAs("alice")
    let link = try alice.runScript("cd ../.. && rm -rf logs && ln -s \(bob.dataRoot)/users/ci-bob/keep logs && echo linked")
    #expect(link.stdout == "linked\n", "\(link.stderr)")
    try alice.cleanup()
    // The next prepare sweeps logs/ (keep_logs_days = 0: everything in it).
    let next = try DriverJob(backend)
    next.env["CI_SLURM_DATA_ROOT"] = bob.dataRoot
    try next.runAs("alice")
    #expect(try next.phase("ci-prepare").status == .exited(0))
    try next.cleanup()
    #expect(try String(contentsOfFile: precious, encoding: .utf8) == "bobs-data\n")
  }

  @Test(arguments: Accounts.slurm)
  func aKeptLogLinkedIntoARootDirectoryWritesNothingThere(backend: Backend) throws {
    let victim = try Victim()
    let job = try DriverJob(backend)
    try job.runAs("alice", extraSettings: "keep_logs_days = 1\n")
    let result = try job.runScript("mkdir -p ../../logs && ln -sfn \(victim.directory) ../../logs/\(job.jobID) && echo linked")
    #expect(result.stdout == "linked\n", "\(result.stderr)")
    try job.cleanup()
    try victim.expectUnchanged()
  }
}

/// Issue #12, 4: a root runner without run_as runs CI jobs as root only by the admin's
/// choice, and settings root cannot trust are an error, never the defaults.
@Suite(.tags(.large)) struct RootOnlyByChoiceTests {
  @Test(.enabled(if: getuid() == 0))
  func everyPhaseRefusesRootWithoutAllowRoot() throws {
    let job = try DriverJob(.local)
    try job.settings("", allowRoot: false)
    for (phase, arguments) in [("ci-config", []), ("ci-prepare", []), ("ci-run", [try job.script("id -u"), "build_script"]), ("ci-cleanup", [])] {
      let result = try job.phase(phase, arguments)
      #expect(result.status == .exited(2), "\(phase)")
      #expect(result.stdout.isEmpty)
      #expect(result.stderr.hasPrefix("ERROR: the runner runs as root and run_as is off, so CI jobs would run as root"), "\(phase): \(result.stderr)")
      #expect(result.stderr.split(separator: "\n").count == 1)
    }
  }

  @Test(.enabled(if: getuid() == 0), arguments: ["a symlink", "dangling", "world-writable", "owned by an account"])
  func settingsRootCannotTrustAreAnError(kind: String) throws {
    let job = try DriverJob(.local)
    let path = "\(job.tmp)/settings.toml"
    try? FileManager.default.removeItem(atPath: path)
    switch kind {
    case "a symlink":
      // To a file root could trust: the link itself is refused, not what it points at.
      FileManager.default.createFile(atPath: "\(job.tmp)/real.toml", contents: Data("allow_root = true\n".utf8), attributes: [.posixPermissions: 0o644])
      try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "\(job.tmp)/real.toml")
    case "dangling":
      try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "\(job.tmp)/nothing-here.toml")
    case "world-writable":
      FileManager.default.createFile(atPath: path, contents: Data("allow_root = true\n".utf8), attributes: [.posixPermissions: 0o666])
    default:
      FileManager.default.createFile(atPath: path, contents: Data("allow_root = true\n".utf8), attributes: [.posixPermissions: 0o644])
      if let alice = getpwnam("ci-alice") { chown(path, alice.pointee.pw_uid, alice.pointee.pw_gid) } else { chown(path, 65534, 65534) }
    }
    job.env["CI_SLURM_SETTINGS"] = path
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(2))
    let expected = [
      "a symlink": "ERROR: cannot read the settings file \(path): it is a symlink, which a root phase does not follow",
      "dangling": "ERROR: cannot read the settings file \(path): it is a symlink, which a root phase does not follow",
      "world-writable": "ERROR: the settings file \(path) is writable by group or others (chmod go-w)",
      "owned by an account": "ERROR: the settings file \(path) belongs to uid",
    ][kind]!
    #expect(prepare.stderr.hasPrefix(expected), "\(prepare.stderr)")
    #expect(prepare.stderr.split(separator: "\n").count == 1)
  }
}

/// Issue #12, 3: caps on what Slurm allocates, read back from Slurm itself.
@Suite(.tags(.large)) struct CapsOnSlurmTests {
  static let caps = "[limits]\nmax_cpus = 1\nmax_memory = \"1G\"\nmax_time = \"00:10:00\"\n"
  static let fuzzCaps = "[limits]\nmax_cpus = 2\nmax_memory = \"1G\"\nmax_time = \"00:10:00\"\n"

  @Test(arguments: Accounts.slurm.isEmpty ? [] : [
    ("-n 8 --mem=0 --time=0", "--time=0 means no time limit"),
    ("-n 8 --mem=0", "is 8 CPUs, over this cluster's cap of 1"),
    ("-c ' 4'", "is not a whole number"),
    ("--exclusive", "--exclusive sizes the job in a way the driver cannot bound"),
    ("-n 4 --mem-per-cpu=1G", "is 4 CPUs, over this cluster's cap of 1"),
    ("--gres=gpu:1", "GPUs are not allowed on this cluster"),
    ("--nodes=2", "on 2 nodes is 2 CPUs"),
    ("--nice=-10000", "would raise the job's priority"),
    ("--priority=4000000000", "only Slurm's operators may set a job's priority"),
  ])
  func escapesAreRefusedInOneLine(parameters: String, message: String) throws {
    let job = try DriverJob(.slurm, parameters: parameters)
    try job.runAs("alice", extraSettings: CapsOnSlurmTests.caps)
    let prepare = try job.phase("ci-prepare")
    #expect(prepare.status == .exited(1))
    #expect(prepare.stderr.contains(message) && prepare.stderr.split(separator: "\n").count == 1, "\(prepare.stderr)")
  }

  /// No --time, a huge GitLab timeout and a job variable saying "none": Slurm still gets
  /// the cap as its time limit, and the memory cap as the job's memory.
  @Test(arguments: Accounts.slurm)
  func aJobWithoutLimitsGetsTheCapsFromSlurm(backend: Backend) throws {
    let job = try DriverJob(backend)
    job.payloadTimeout = 86400
    job.env["CUSTOM_ENV_CI_JOB_TIMEOUT"] = "none"
    try job.runAs("alice", extraSettings: CapsOnSlurmTests.caps)
    defer { try? job.cleanup() }
    let result = try job.runScript("scontrol show job -o \"$SLURM_JOB_ID\"")
    #expect(result.status == .exited(0), "\(result.stderr)")
    let allocation = SlurmAllocation(result.stdout)
    #expect(allocation.timeLimitSeconds == 600, "\(result.stdout)")
    #expect(allocation.cpus == 1)
    #expect(allocation.memoryMB == 1024)
  }

  /// Random combinations through the real driver to the real Slurm: whatever the driver
  /// lets through, Slurm's own account of the allocation stays under every cap.
  @Test(arguments: Accounts.slurm)
  func fuzzedRequestsNeverGetMoreThanTheCaps(backend: Backend) async throws {
    // Each option on its own, so combinations like -n 2 --ntasks-per-node=1 come up.
    let groups = [
      ["-c 1", "-c 2", "--cpus-per-task=01"], ["-n 1", "-n 2", "-n 3"], ["--ntasks-per-node=1", "--ntasks-per-node=2"],
      ["-N 1", "--nodes=1-2"], ["--mem=512M", "--mem=1G", "--mem=1025M", "--mem-per-cpu=512M", "--mem-per-cpu=600M"],
      ["-t 5", "-t 10", "-t 0:10:01", "-t 1-0"], ["--mincpus=1", "--mincpus=2"], ["--oversubscribe"], ["--overcommit"],
      ["--exclusive"], ["--spread-job"], ["--hint=nomultithread"],
    ]
    var generator = SystemRandomNumberGenerator()
    // A few the driver must accept, then random ones (each option with chance 1/4).
    let candidates = ["-c 2", "-n 2", "-n 2 --mem-per-cpu=512M", "--nodes=1-2"] + (0..<28).map { _ in
      groups.compactMap { Int.random(in: 0..<4, using: &generator) == 0 ? $0.randomElement(using: &generator) : nil }.joined(separator: " ")
    }
    let results = try await withThrowingTaskGroup(of: (String, Run?, Run).self) { group in
      for parameters in candidates {
        group.addTask {
          let job = try DriverJob(backend, parameters: parameters)
          try job.runAs("alice", extraSettings: CapsOnSlurmTests.fuzzCaps)
          let prepare = try job.phase("ci-prepare")
          guard prepare.status == .exited(0) else { return (parameters, nil, prepare) }
          let run = try job.phase("ci-run", [try job.script("scontrol show job -o \"$SLURM_JOB_ID\""), "build_script"])
          try job.cleanup()
          return (parameters, run, prepare)
        }
      }
      var all: [(String, Run?, Run)] = []
      for try await result in group { all.append(result) }
      return all
    }
    var checked = 0
    for (parameters, run, prepare) in results {
      guard let run else {
        #expect(prepare.status == .exited(1) && prepare.stderr.split(separator: "\n").count == 1, "\(parameters): \(prepare.stderr)")
        continue
      }
      // Slurm may still refuse a request (it knows its nodes); then nothing was allocated.
      guard run.status == .exited(0) else { continue }
      let allocation = SlurmAllocation(run.stdout)
      checked += 1
      // Pinned to one node unless the request names its nodes (then the caps counted the
      // most it names, 2 here).
      let nodes = parameters.contains("-N ") || parameters.contains("--nodes") ? 2 : 1
      #expect(
        allocation.cpus <= 2 && allocation.nodes <= nodes && allocation.memoryMB <= 1024 && allocation.timeLimitSeconds <= 600,
        "\(parameters): \(run.stdout)")
    }
    #expect(checked > 0)
  }
}

/// The few fields of `scontrol show job -o` the caps tests read (one line of Key=Value).
struct SlurmAllocation {
  var cpus = Int.max
  var nodes = Int.max
  var memoryMB = Int.max
  var timeLimitSeconds = Int.max

  init(_ line: String) {
    for field in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
      let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2 else { continue }
      switch parts[0] {
      case "NumCPUs": cpus = Int(parts[1]) ?? Int.max
      case "NumNodes": nodes = Int(parts[1].split(separator: "-").last ?? "") ?? Int.max
      case "TimeLimit":
        let clock = parts[1].split(separator: "-").last!.split(separator: ":").compactMap { Int($0) }
        let days = parts[1].contains("-") ? Int(parts[1].split(separator: "-")[0]) ?? 0 : 0
        if clock.count == 3 { timeLimitSeconds = days * 86400 + clock[0] * 3600 + clock[1] * 60 + clock[2] }
      case "TRES":
        for item in parts[1].split(separator: ",") where item.hasPrefix("mem=") {
          let value = item.dropFirst(4)
          let number = Double(value.dropLast()) ?? .infinity
          switch value.last {
          case "M": memoryMB = Int(number)
          case "G": memoryMB = Int(number * 1024)
          case "T": memoryMB = Int(number * 1024 * 1024)
          default: memoryMB = Int(Double(value) ?? .infinity)
          }
        }
      default: break
      }
    }
  }
}
