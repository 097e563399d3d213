#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling
import AtomicFiles

/// What ci-run submitted for a CI job, so that ci-cleanup can cancel what is still running,
/// even after ci-run was killed with SIGKILL.
public struct JobState: Codable, Equatable, Sendable {
  public struct Submission: Codable, Equatable, Sendable {
    public var stage: String
    public var name: String
    /// nil while sbatch runs: cleanup then cancels by name.
    public var id: JobID?
    /// Set once ci-run saw every task end; cleanup need not ask Slurm about it.
    public var finished: Bool

    public init(stage: String, name: String, id: JobID?, finished: Bool) {
      self.stage = stage
      self.name = name
      self.id = id
      self.finished = finished
    }
  }

  public var submissions: [Submission] = []
  /// When prepare ran (seconds since 1970): the CI job's start, if the payload says none.
  public var jobStartedAt: Double?
  /// When the first user-script stage ran: where the runner starts RUNNER_SCRIPT_TIMEOUT.
  public var scriptStartedAt: Double?

  public init() {}

  public static func load(_ path: String) -> JobState {
    // The job's own processes can replace the file: only a regular one is read.
    guard let data = AtomicFiles.readRegularFile(path),
      let state = try? JSONDecoder().decode(JobState.self, from: data)
    else { return JobState() }
    return state
  }

  /// Written to a temp file and renamed, so a reader never sees half a file.
  public func save(_ path: String) throws {
    let data = try JSONEncoder().encode(self)
    try PrivateFiles.write(data, to: path)
  }
}
