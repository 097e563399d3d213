#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import SbatchModel

/// A batch system the driver submits CI scripts to. `SlurmScheduler` is the real one;
/// `LocalScheduler` runs jobs as child processes for a first run without Slurm. The driver's
/// core only ever sees this protocol.
public protocol Scheduler: Sendable {
  /// For log lines: "Slurm", "local".
  var name: String { get }
  /// Throws `SchedulerError` (.unavailable) when the scheduler does not answer.
  func checkAvailable() throws
  /// Submits and returns at once with the job's id.
  func submit(_ job: BatchJob) throws -> JobID
  /// A cheap look at the job's tasks (one controller query at most). `fresh` when the
  /// caller waits only for the scheduler's word that tasks ended: ask the one that knows
  /// first (Slurm's controller) rather than the cheap one that lags (accounting).
  func snapshot(of id: JobID, fresh: Bool) throws -> JobSnapshot
  /// The detailed end state of each finished task; called only for tasks that ended
  /// without writing their status file (killed, timed out, node failure). `directory` is
  /// the job's `BatchJob.directory`.
  func finalStates(of id: JobID, in directory: String) throws -> TaskEnds
  /// Cancels the job (every task); succeeds when the job has already ended.
  func cancel(_ id: JobID) throws
  /// Lowers the time limit of a started job (`task`: one array task, nil: the whole job)
  /// to `minutes` from its start, so that it ends by the scheduler's hand before GitLab's
  /// clock stops the CI job. A user may lower, never raise, their own job's limit.
  func lowerTimeLimit(of id: JobID, task: Int?, toMinutes minutes: Int) throws
  /// Cancels every job of the current user with this name: the safety net for a submission
  /// whose id was never recorded, and cleanup's last word.
  func cancel(named name: String) throws
  /// The current user's jobs of this name that are still pending or running: what cleanup
  /// checks it left nothing behind.
  func liveJobs(named name: String) throws -> [JobID]
  /// Why a pending job waits, in the scheduler's words; asked only at heartbeat time.
  func pendingReason(of id: JobID) -> String?
  /// What each task used, for the log's summary; asked once when the job is over. Empty
  /// when the scheduler does not account (the summary then shows "-").
  func usage(of id: JobID) -> [Int: TaskUsage]
  /// The command line `submit` runs for this job, for the log's reproducer (nil: none).
  func submissionCommand(for job: BatchJob) -> [String]?
}

extension Scheduler {
  public func pendingReason(of id: JobID) -> String? { nil }
  public func usage(of id: JobID) -> [Int: TaskUsage] { [:] }
  public func submissionCommand(for job: BatchJob) -> [String]? { nil }
  public func snapshot(of id: JobID) throws -> JobSnapshot { try snapshot(of: id, fresh: false) }
}

public struct JobID: Hashable, Sendable, Codable, CustomStringConvertible {
  public var raw: String
  public init(_ raw: String) { self.raw = raw }
  public var description: String { raw }
}

/// What the driver hands a scheduler: a wrapper script and where its files go.
public struct BatchJob: Sendable, Equatable {
  /// The scheduler's job name (Slurm `--job-name`), derived from the CI job.
  public var name: String
  /// The batch script; it holds no CI variables (schedulers keep batch scripts).
  public var wrapperScript: String
  /// Where each task writes its output (`JobFiles`).
  public var directory: String
  /// Where the job starts.
  public var workingDirectory: String
  /// User options plus the driver's own (time limit, defaults).
  public var request: JobRequest
  /// The job's whole environment: sanitised, no CI variables.
  public var environment: [String: String]

  public init(
    name: String, wrapperScript: String, directory: String, workingDirectory: String,
    request: JobRequest, environment: [String: String]
  ) {
    self.name = name
    self.wrapperScript = wrapperScript
    self.directory = directory
    self.workingDirectory = workingDirectory
    self.request = request
    self.environment = environment
  }

  /// Task ids: the array's, or [0] for a plain job.
  public var taskIDs: [Int] { (try? request.array)?.taskIDs ?? [0] }
  public var isArray: Bool { request.has("array") }
}

public struct JobSnapshot: Equatable, Sendable {
  public enum TaskState: Equatable, Sendable {
    case pending(reason: String)
    case running
    /// Ended in the scheduler's view (the status file may still be on its way).
    case ended
  }
  /// By task id (0 for a plain job). Tasks of a pending array not yet split out are
  /// reported under `pendingRest`.
  public var tasks: [Int: TaskState]
  public var pendingRest: String?
  /// The scheduler no longer knows the job at all.
  public var unknown: Bool
  /// When a newer answer can first be had: a shared answer's expiry. The watch asks again
  /// then, not a whole poll interval later, so what the next answer tells (an outside kill)
  /// is seen within one tick of happening. Nil: at the next poll, as usual.
  public var renewsAt: Date?

  public init(tasks: [Int: TaskState] = [:], pendingRest: String? = nil, unknown: Bool = false, renewsAt: Date? = nil) {
    self.tasks = tasks
    self.pendingRest = pendingRest
    self.unknown = unknown
    self.renewsAt = renewsAt
  }
}

/// How a task ended, as the scheduler saw it.
public struct TaskEnd: Equatable, Sendable {
  public enum Kind: Equatable, Sendable {
    case completed
    case failed
    case timeout
    case cancelled(by: String?)
    case nodeFailure
    case bootFailure
    case preempted
    case outOfMemory
    case deadline
    case other(String)
  }
  public var kind: Kind
  public var exitCode: Int32
  public var signal: Int32
  public var timeLimit: String?
  public var nodes: String?

  public init(
    kind: Kind, exitCode: Int32 = 0, signal: Int32 = 0, timeLimit: String? = nil,
    nodes: String? = nil
  ) {
    self.kind = kind
    self.exitCode = exitCode
    self.signal = signal
    self.timeLimit = timeLimit
    self.nodes = nodes
  }

  /// The shell-style status: 128+signal when killed by a signal.
  public var shellStatus: Int32 { signal != 0 && exitCode == 0 ? 128 + signal : exitCode }
}

/// What one task used, in the scheduler's own notation (Slurm: `00:01:02`, `1234K`, `node1`).
public struct TaskUsage: Equatable, Sendable {
  public var elapsed: String?
  public var maxRSS: String?
  public var node: String?
  public init(elapsed: String? = nil, maxRSS: String? = nil, node: String? = nil) {
    self.elapsed = elapsed
    self.maxRSS = maxRSS
    self.node = node
  }
}

/// The end states a scheduler reports: per task, and a fallback for tasks it did not list.
public struct TaskEnds: Equatable, Sendable {
  public var byTask: [Int: TaskEnd]
  public var otherwise: TaskEnd?
  public init(byTask: [Int: TaskEnd] = [:], otherwise: TaskEnd? = nil) {
    self.byTask = byTask
    self.otherwise = otherwise
  }
  public subscript(task: Int) -> TaskEnd? { byTask[task] ?? otherwise }
}

public struct SchedulerError: Error, Equatable, CustomStringConvertible, Sendable {
  public enum Code: Equatable, Sendable {
    /// The controller did not answer (after retries).
    case unavailable
    /// The user's request is wrong (unknown partition, more than the cluster has, a bad
    /// number...): a build failure, the user can fix it.
    case requestRefused
    /// The scheduler refused the job for a reason the user cannot fix.
    case submissionRefused
    /// The CI job was stopped (SIGTERM) while the submission waited.
    case cancelled
    /// A command's output made no sense.
    case unexpectedOutput
    case commandFailed
  }
  public var code: Code
  public var message: String

  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }
  public var description: String { message }
}
