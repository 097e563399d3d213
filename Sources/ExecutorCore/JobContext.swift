import ChildProcesses
public import CustomExecutorAPI
// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// How a phase failed, as the runner must be told. Mapped to exit codes in one place
/// (ExecutorCLI's `ExitCodeMapper`).
public enum DriverFailure: Error, Equatable, Sendable {
  /// The user's job failed: the runner reports `exitCode` (script_failure).
  case build(exitCode: Int32, message: String?)
  /// Infrastructure trouble: the runner reports a system failure and may retry.
  case system(String)
}

/// Everything a phase knows about the CI job, read once from the runner's environment.
public struct JobContext: Sendable {
  public var environment: RunnerEnvironment
  public var settings: DriverSettings
  /// The CI job id: the job payload's `id` when readable (a job cannot override it),
  /// else CUSTOM_ENV_CI_JOB_ID. Digits only, so it is safe in paths.
  public var jobID: String
  public var projectSlug: String
  /// The local account the job runs as (run_as); nil: the runner's own account.
  public var account: LocalAccount?

  public init(environment: RunnerEnvironment, settings: DriverSettings) throws {
    self.environment = environment
    self.settings = settings
    jobID = try JobContext.trustedJobID(environment)
    let slug = environment.job("CI_PROJECT_PATH_SLUG") ?? environment.job("CI_PROJECT_NAME") ?? "project"
    projectSlug = JobContext.sanitized(slug)
    account = try LocalAccount.resolve(settings: settings, environment: environment)
  }

  /// Prefix for every command that acts for the job: submission, cancel, local stages.
  public var commandPrefix: [String] { account.map { ["runuser", "-u", $0.name, "--"] } ?? [] }

  /// The job's part of the data root: per account when jobs run as mapped users.
  public var accountRoot: String {
    account.map { "\(settings.dataRoot)/users/\($0.name)" } ?? settings.dataRoot
  }

  /// A job variable as GitLab set it: the first occurrence in the job payload (a job's own
  /// variables come later and cannot impersonate), else the CUSTOM_ENV_ value.
  func trustedVariable(_ name: String) -> String? {
    JobContext.trustedVariable(name, environment)
  }

  /// The parts of the runner's job payload (JOB_RESPONSE_FILE) the driver trusts.
  struct JobResponse: Decodable {
    struct Variable: Decodable {
      var key: String?
      var value: String?

      init(from decoder: any Decoder) throws {
        // Lenient per entry: one odd entry must not hide the others.
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try? container.decode(String.self, forKey: .key)
        value = try? container.decode(String.self, forKey: .value)
      }

      enum CodingKeys: String, CodingKey { case key, value }
    }

    var id: Int?
    var variables: [Variable]?

    init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      id = try? container.decode(Int.self, forKey: .id)
      variables = try? container.decode([Variable].self, forKey: .variables)
    }

    enum CodingKeys: String, CodingKey { case id, variables }

    static func load(_ environment: RunnerEnvironment) -> JobResponse? {
      guard let path = environment.jobResponseFile, let data = FileManager.default.contents(atPath: path) else { return nil }
      return try? JSONDecoder().decode(JobResponse.self, from: data)
    }
  }

  static func trustedVariable(_ name: String, _ environment: RunnerEnvironment) -> String? {
    if let variables = JobResponse.load(environment)?.variables {
      return variables.first { $0.key == name }?.value
    }
    return environment.job(name)
  }

  static func trustedJobID(_ environment: RunnerEnvironment) throws -> String {
    if let id = JobResponse.load(environment)?.id, id > 0 { return String(id) }
    guard let id = environment.job("CI_JOB_ID") else {
      throw DriverFailure.system(
        "CUSTOM_ENV_CI_JOB_ID is not set and JOB_RESPONSE_FILE has no job id: run this driver from gitlab-runner's custom executor (or ci-local)"
      )
    }
    guard !id.isEmpty, id.count <= 20, id.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw DriverFailure.system("CUSTOM_ENV_CI_JOB_ID is '\(id.prefix(40))', not a job number")
    }
    return id
  }

  /// Letters, digits, `-`, `_` and `.`, at most 60 characters: safe as a Slurm job name.
  static func sanitized(_ text: String) -> String {
    let cleaned = String(
      text.unicodeScalars.map { scalar -> Character in
        let ok = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
          || scalar == "-" || scalar == "_" || scalar == "."
        return ok ? Character(scalar) : "-"
      })
    let trimmed = String(cleaned.prefix(60))
    return trimmed.isEmpty ? "project" : trimmed
  }

  /// The Slurm job name: findable with `squeue --name` and unique per CI job.
  public var schedulerJobName: String { "ci-\(projectSlug)-\(jobID)" }

  /// Per-job state: staged scripts, wrapper, output and status files. Mode 0700.
  public var jobDirectory: String { "\(accountRoot)/jobs/\(jobID)" }
  /// Unique per CI job, so concurrent jobs of one project never share a checkout.
  public var buildsDirectory: String { "\(accountRoot)/builds/\(jobID)" }
  public var cacheDirectory: String { "\(accountRoot)/cache" }
  public var logsDirectory: String { "\(accountRoot)/logs" }
  public var stateFile: String { "\(jobDirectory)/state.json" }

  /// CI_JOB_TIMEOUT in seconds, if the runner gave one.
  public var jobTimeoutSeconds: Int? { environment.job("CI_JOB_TIMEOUT").flatMap { Int($0) } }
}

/// Where a phase writes: the job's output (stdout) and the driver's own lines (stderr).
/// Both end up in the CI log; tests capture them.
public struct DriverConsole: Sendable {
  public var output: @Sendable (Data) -> Void
  public var note: @Sendable (String) -> Void

  public init(output: @escaping @Sendable (Data) -> Void, note: @escaping @Sendable (String) -> Void) {
    self.output = output
    self.note = note
  }
}

/// Set by the CLI's signal handler; the run loop checks it every tick.
public final class CancellationFlag: @unchecked Sendable {
  private let lock = Lock()
  private var value = false
  public init() {}
  public var isSet: Bool {
    lock.lock()
    defer { lock.unlock() }
    return value
  }
  public func set() {
    lock.lock()
    value = true
    lock.unlock()
  }
}

/// A local account jobs run as.
public struct LocalAccount: Equatable, Sendable {
  public var name: String
  public var uid: UInt32
  public var gid: UInt32

  static func resolve(settings: DriverSettings, environment: RunnerEnvironment) throws -> LocalAccount? {
    let runAs = settings.runAs
    guard runAs.mode != .off else { return nil }
    guard getuid() == 0 else {
      throw DriverFailure.system("run_as.mode is '\(runAs.mode.rawValue)' but the runner does not run as root; turn run_as off or run gitlab-runner as root")
    }
    let what = runAs.mode == .user ? "GitLab user" : "project"
    guard let identity = JobContext.trustedVariable(runAs.mode == .user ? "GITLAB_USER_LOGIN" : "CI_PROJECT_PATH", environment),
      !identity.isEmpty
    else {
      throw DriverFailure.system("run_as needs \(runAs.mode == .user ? "GITLAB_USER_LOGIN" : "CI_PROJECT_PATH"), which the runner did not give")
    }
    guard let local = runAs.accounts[identity] else {
      throw DriverFailure.build(exitCode: 1, message: "\(what) '\(identity)' is not mapped to a local account on this runner (run_as.accounts); ask the cluster admin")
    }
    guard let entry = getpwnam(local) else {
      throw DriverFailure.system("run_as maps \(what) '\(identity)' to '\(local)', which is not an account on this machine")
    }
    guard entry.pointee.pw_uid != 0 else {
      throw DriverFailure.build(exitCode: 1, message: "run_as maps \(what) '\(identity)' to '\(local)' (uid 0): CI jobs never run as root")
    }
    return LocalAccount(name: local, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
  }
}

#if canImport(Glibc)
  import Glibc
#endif
