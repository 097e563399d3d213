public import Scheduling

/// How one task ended, from its status file and (when that is missing or says it was
/// terminated) the scheduler's own record. Pure: tested without a cluster.
public enum TaskOutcome: Equatable, Sendable {
  case succeeded
  case failed(exitCode: Int32)
  case timedOut(limit: String?)
  case outOfMemory
  case cancelledOutside(by: String?)
  case infrastructure(String)

  public static func classify(status: TaskStatus?, end: TaskEnd?) -> TaskOutcome {
    if case .exited(let code)? = status {
      return code == 0 ? .succeeded : .failed(exitCode: code)
    }
    guard let end else {
      return .infrastructure("ended without writing its status, and the scheduler no longer knows how")
    }
    switch end.kind {
    case .completed: return .succeeded
    case .failed: return .failed(exitCode: end.shellStatus == 0 ? 1 : end.shellStatus)
    case .timeout: return .timedOut(limit: end.timeLimit)
    case .outOfMemory: return .outOfMemory
    case .cancelled(let by): return .cancelledOutside(by: by)
    case .nodeFailure:
      return .infrastructure("its node failed\(end.nodes.map { " (\($0))" } ?? "")")
    case .bootFailure: return .infrastructure("its node failed to boot")
    case .preempted: return .infrastructure("it was preempted by a higher-priority job")
    case .deadline: return .failed(exitCode: 1)
    case .other(let state): return .infrastructure("it ended in state \(state)")
    }
  }

  /// Exit code reported for a build failure. A time limit reports 124, as timeout(1) does,
  /// so `allow_failure: exit_codes: [124]` can tolerate it; out of memory reports 137.
  public var buildExitCode: Int32? {
    switch self {
    case .failed(let code): return code
    case .timedOut: return 124
    case .outOfMemory: return 137
    default: return nil
    }
  }

  public var isSystemFailure: Bool {
    switch self {
    case .cancelledOutside, .infrastructure: return true
    default: return false
    }
  }

  /// Short text for the per-task summary.
  public var summary: String {
    switch self {
    case .succeeded: return "exit 0"
    case .failed(let code): return "exit \(code)"
    case .timedOut(let limit): return "time limit\(limit.map { " \($0)" } ?? "")"
    case .outOfMemory: return "out of memory"
    case .cancelledOutside(let by): return "cancelled outside CI\(by.map { " (by uid \($0))" } ?? "")"
    case .infrastructure(let why): return why
    }
  }
}

/// The whole job's verdict from its tasks' outcomes, with the one line that says why: the
/// one place a job's result is decided (`JobWatch` calls it when the job is over).
public enum JobVerdict {
  public static func decide(
    jobID: JobID, outcomes: [Int: TaskOutcome], isArray: Bool, cancelled: Bool = false, scheduler: String = "Slurm",
    partialExitCode: Int32? = nil, outOfTime: String? = nil
  ) -> DriverFailure? {
    // Cancelled while pending because GitLab's clock could no longer fit it: the CI job's
    // own timeout, which GitLab reports as the job's failure (never the runner's), so a
    // build failure with the time limit's 124.
    if let outOfTime { return .build(exitCode: 124, message: outOfTime) }
    // The runner stopped the CI job: whatever the tasks did after the scancel, the job's
    // result is the stop's (a build failure, as gitlab-runner reports a cancelled script).
    if cancelled {
      return .build(exitCode: 143, message: "\(scheduler) job \(jobID) was cancelled because the CI job was stopped")
    }
    let ordered = outcomes.sorted { $0.key < $1.key }
    let failing = ordered.filter { $0.value != .succeeded }
    guard !failing.isEmpty else { return nil }
    let system = failing.filter { $0.value.isSystemFailure }
    if !isArray, let only = failing.first?.value {
      switch only {
      case .timedOut(let limit):
        return .build(exitCode: 124, message: "\(scheduler) job \(jobID) hit its time limit\(limit.map { " of \($0)" } ?? "")")
      case .outOfMemory:
        return .build(exitCode: 137, message: "\(scheduler) job \(jobID) ran out of memory (ask for more with --mem)")
      case .cancelledOutside(let by):
        return .system("\(scheduler) job \(jobID) was cancelled outside CI\(by.map { " (by uid \($0))" } ?? "")")
      case .infrastructure(let why):
        return .system("\(scheduler) job \(jobID) did not finish: \(why)")
      case .failed(let code):
        return .build(exitCode: code, message: nil)
      case .succeeded:
        return nil
      }
    }
    let list = failing.map { "\($0.key) (\($0.value.summary))" }.joined(separator: ", ")
    if !system.isEmpty {
      return .system("\(scheduler) job \(jobID): \(failing.count) of \(outcomes.count) tasks did not succeed: \(list)")
    }
    // Some tasks succeeded: the partial code, which `allow_failure: exit_codes:` can accept
    // while a wholly failed array still fails.
    if let partialExitCode, failing.count < outcomes.count {
      return .build(
        exitCode: partialExitCode,
        message: "\(scheduler) job \(jobID): \(failing.count) of \(outcomes.count) tasks failed: \(list) (partly failed: exit \(partialExitCode))")
    }
    let code = failing.first!.value.buildExitCode ?? 1
    return .build(exitCode: code, message: "\(scheduler) job \(jobID): \(failing.count) of \(outcomes.count) tasks failed: \(list)")
  }
}
