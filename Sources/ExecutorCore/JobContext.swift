public import ChildProcesses
public import CustomExecutorAPI
import SbatchModel
import Synchronization
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// Everything a phase knows about the CI job: the trusted facts (`TrustedJob`) and the
/// runner's environment, whose job variables (CUSTOM_ENV_*) are the user's to set.
public struct JobContext: Sendable {
  public var environment: RunnerEnvironment
  public var settings: DriverSettings
  public var trusted: TrustedJob
  public var projectSlug: String

  public init(environment: RunnerEnvironment, settings: DriverSettings, trusted: TrustedJob) {
    self.environment = environment
    self.settings = settings
    self.trusted = trusted
    let slug = environment.job("CI_PROJECT_PATH_SLUG") ?? environment.job("CI_PROJECT_NAME") ?? "project"
    projectSlug = JobContext.sanitized(slug)
  }

  /// The CI job id: digits only, so it is safe in paths.
  public var jobID: String { trusted.jobID }
  /// The local account the job runs as (run_as); nil: the runner's own account.
  public var account: Credentials? { trusted.account }

  /// The job's part of the data root: per account when jobs run as mapped users.
  public var accountRoot: String {
    account.map { AccountRoot.path(dataRoot: settings.dataRoot, account: $0) } ?? settings.dataRoot
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

  public var schedulerJobName: String { JobLayout.schedulerJobName(projectSlug: projectSlug, jobID: jobID) }

  /// The job's paths (`JobLayout`, which `ci-gen explain` prints too).
  public var layout: JobLayout { JobLayout(root: accountRoot, jobID: jobID) }
  public var jobDirectory: String { layout.jobDirectory }
  public var buildsDirectory: String { layout.buildsDirectory }
  public var cacheDirectory: String { "\(accountRoot)/cache" }
  public var logsDirectory: String { "\(accountRoot)/logs" }
  /// The account's shared Slurm status answer (`SharedStatusFile`).
  public var statusDirectory: String { "\(accountRoot)/status" }
  public var stateFile: String { layout.stateFile }

  /// The CI job's timeout in seconds, from the job payload (a job variable could lie).
  public var jobTimeoutSeconds: Int? { trusted.timeoutSeconds }
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
public final class CancellationFlag: Sendable {
  private let value = Atomic<Bool>(false)
  public init() {}
  public var isSet: Bool { value.load(ordering: .acquiring) }
  public func set() { value.store(true, ordering: .releasing) }
}
