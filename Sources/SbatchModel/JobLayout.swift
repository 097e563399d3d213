/// Where one CI job's files live under the driver's data root (the account's part of it
/// when jobs run as mapped users), and the Slurm job name it gets. The driver creates these
/// paths and `ci-gen explain` prints them with placeholders: one definition, so the two
/// cannot drift.
public struct JobLayout: Equatable, Sendable {
  /// Under CI_PROJECT_DIR: the executor's JUnit report of each Slurm job, which ci-gen's
  /// jobs declare as `artifacts:reports:junit`.
  public static let junitReport = ".ci-slurm/junit.xml"

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
