/// Where one CI job's files live under the driver's data root (the account's part of it
/// when jobs run as mapped users), and the Slurm job name it gets. The driver creates these
/// paths and `ci-gen explain` prints them with placeholders: one definition, so the two
/// cannot drift.
public struct JobLayout: Equatable, Sendable {
  /// Under CI_PROJECT_DIR: the executor's JUnit report of each Slurm job, which ci-gen's
  /// jobs declare as `artifacts:reports:junit`.
  public static let junitReport = ".ci-slurm/junit.xml"
  /// Under CI_PROJECT_DIR: the complete output of every task, declared as `artifacts:paths`
  /// (the CI log holds only its first `output_limit` and the tails).
  public static let completeLogs = ".ci-slurm/logs/"
  /// Under CI_PROJECT_DIR: links to the Slurm job and the published report, declared as
  /// `artifacts:reports:annotations`.
  public static let annotations = ".ci-slurm/annotations.json"

  /// One task's complete log under CI_PROJECT_DIR: `.ci-slurm/logs/<CI job name>/task-N.log`
  /// (`job.log` for a plain job). The name keeps the jobs of a pipeline apart when a later
  /// job downloads their artifacts; anything but letters, digits, `.`, `_` and `-` becomes
  /// `_`, so it is one path component and never `..`. An after_script run as a Slurm job of
  /// its own writes `after_script.log` (`after_script-task-N.log`): it must not replace the
  /// script's log, which a failed job needs most.
  public static func completeLog(ciJobName: String, task: Int, isArray: Bool, afterScript: Bool = false) -> String {
    var name = String(ciJobName.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
    if name.allSatisfy({ $0 == "." }) { name = String(repeating: "_", count: max(1, name.count)) }
    let file = afterScript ? (isArray ? "after_script-task-\(task).log" : "after_script.log") : (isArray ? "task-\(task).log" : "job.log")
    return "\(completeLogs)\(name)/\(file)"
  }

  /// The data root, or the account's part of it.
  public var root: String
  /// GitLab's CI_JOB_ID.
  public var jobID: String

  public init(root: String, jobID: String) {
    self.root = root
    self.jobID = jobID
  }

  /// Per-job state: staged scripts, wrapper, output and status files. Mode 0700.
  public var jobDirectory: String { "\(root)/jobs/\(jobID)" }
  /// Unique per CI job, so concurrent jobs of one project never share a checkout.
  public var buildsDirectory: String { "\(root)/builds/\(jobID)" }
  public var stateFile: String { "\(jobDirectory)/state.json" }

  /// One run of a stage (`build_script-1`, a retried stage gets the next attempt).
  public func stageDirectory(_ stage: String, attempt: Int) -> String { "\(jobDirectory)/\(stage)-\(attempt)" }

  /// The Slurm job name: findable with `squeue --name` and unique per CI job.
  public static func schedulerJobName(projectSlug: String, jobID: String) -> String { "ci-\(projectSlug)-\(jobID)" }
}
