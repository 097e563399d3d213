#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import Scheduling

/// The lifecycle of one submitted job, as a value: each `step` is told what the follow loop
/// saw (the time, whether output came, the status files, the answers to what it asked last)
/// and returns what to do next. It does no I/O and reads no clock, so every path (pending,
/// running, ended, cancelled, the controller away, an array's pending rest) is tested by
/// feeding it observations (Tests/ExecutorCoreTests/JobWatchTests.swift).
///
/// The watch ends in three moves: every task is done in the scheduler's word (or the
/// scheduler no longer knows the job), the output is read to its end, then the end states
/// of the tasks without a clean status are asked until they settle; the verdict is
/// `JobVerdict.decide`'s.
public struct JobWatch: Sendable {
  public struct Timing: Equatable, Sendable {
    /// How often the scheduler is asked while tasks run (`poll_seconds`).
    public var pollSeconds: TimeInterval
    public var heartbeatSeconds: TimeInterval
    public var cancelWaitSeconds: TimeInterval

    public init(pollSeconds: TimeInterval, heartbeatSeconds: TimeInterval, cancelWaitSeconds: TimeInterval) {
      self.pollSeconds = pollSeconds
      self.heartbeatSeconds = heartbeatSeconds
      self.cancelWaitSeconds = cancelWaitSeconds
    }
  }

  /// What the loop saw since the last step; the answers are to the previous step's actions.
  public struct Observation: Sendable {
    public var now: Date
    /// New bytes arrived from any task.
    public var sawOutput = false
    /// The status files of `tasksToRead` that could be read and parsed.
    public var statuses: [Int: TaskStatus] = [:]
    /// The runner asked for the CI job to stop.
    public var cancelRequested = false
    public var snapshot: Result<JobSnapshot, SchedulerError>? = nil
    /// The answer to `.cancel`: nil when it succeeded or was not asked.
    public var cancelError: SchedulerError? = nil
    /// The answer to `.askPendingReason` (nil: the scheduler gave none).
    public var pendingReason: String? = nil
    public var ends: Result<TaskEnds, SchedulerError>? = nil
    /// The answer to `.lowerTimeLimit`: nil when it succeeded or was not asked.
    public var limitError: SchedulerError? = nil

    public init(now: Date) { self.now = now }
  }

  public enum Action: Equatable, Sendable {
    /// A driver line for the CI log.
    case note(String)
    /// Ask `Scheduler.snapshot`; `fresh` when the end is due now: only the scheduler's
    /// word on it is missing, or a cancel or SIGTERM came (the controller knows at once;
    /// accounting lags by seconds, a shared answer by up to its tick).
    case poll(fresh: Bool)
    case cancel
    /// Ask `Scheduler.lowerTimeLimit` (task nil: the whole job).
    case lowerTimeLimit(task: Int?, minutes: Int)
    case askPendingReason
    /// Read every output file to its end (the tasks are over).
    case drainToEnd
    /// Ask `Scheduler.finalStates` for the tasks without a clean status.
    case askEnds
    /// The job is over: write its summary (`JobSections.summary`) with the count line
    /// `headline` and each task's outcome.
    case summarize(headline: String, outcomes: [Int: TaskOutcome])
    case finish(verdict: DriverFailure?, ended: Bool)
  }

  enum Stage: Equatable, Sendable {
    case watching
    /// The scheduler says done but some status files are missing: they may still be on
    /// their way over a shared file system.
    case waitingForStatuses(until: Date)
    /// Asking how the unclear tasks ended, again while they are still settling.
    case settling(attempt: Int, nextAsk: Date)
    case finished
  }

  public let id: JobID
  public let schedulerName: String
  public let tasks: [Int]
  public let isArray: Bool
  public let submittedAt: Date
  public let timing: Timing
  /// The CI job's exit code when some but not all of an array's tasks failed (nil: the
  /// first failed task's, as for a wholly failed array).
  public let partialExitCode: Int32?
  /// GitLab's clock around the stage (nil: no timeout known).
  public let budget: StageClock.Budget?

  public private(set) var statuses: [Int: TaskStatus] = [:]
  var endedInScheduler: Set<Int> = []
  var schedulerUnknown = false
  var stage = Stage.watching
  var lastPoll: Date
  /// The last answer's `renewsAt`: a poll is due then, whatever the poll interval says.
  var nextAnswerAt: Date?
  var lastHeartbeat: Date
  var lastOutput: Date
  /// Consecutive polls while only the scheduler's word is missing: they start quick and
  /// back off, so a job's end is seen within a tenth of a second without a poll storm.
  var confirmingPolls = 0
  /// `.askPendingReason` was returned: the next step prints the waiting line.
  var reasonAsked = false
  var pendingReason: String?
  /// When the first task was seen running or printing.
  public internal(set) var startedAt: Date?
  var unavailableSince: Date?
  var cancelledAt: Date?
  var ended = true
  var ends = TaskEnds()
  /// Array tasks the scheduler said run.
  var runningSeen: Set<Int> = []
  /// Tasks whose time limit was looked at once started (0 for a plain job).
  var limited: Set<Int> = []
  /// Why the driver cancelled a pending job for GitLab's clock: the verdict's message.
  var outOfTime: String?
  /// A pending job's time was found not to fit and a fresh look was asked before the
  /// cancel: a shared status answer (which the account's other jobs can write) may say
  /// pending of a job that runs, and only the scheduler's own word may cancel it.
  var fitRecheckAsked = false

  /// Settling gives up after this many asks a second apart (a job killed at its time limit
  /// is COMPLETING for a few seconds before it is TIMEOUT).
  static let settlingAttempts = 30
  static let statusGraceSeconds: TimeInterval = 1

  public init(
    id: JobID, schedulerName: String, tasks: [Int], isArray: Bool, submittedAt: Date, timing: Timing,
    partialExitCode: Int32? = nil, budget: StageClock.Budget? = nil
  ) {
    self.partialExitCode = partialExitCode
    self.budget = budget
    self.id = id
    self.schedulerName = schedulerName
    self.tasks = tasks
    self.isArray = isArray
    self.submittedAt = submittedAt
    self.timing = timing
    lastPoll = submittedAt
    lastHeartbeat = submittedAt
    lastOutput = submittedAt
  }

  /// Tasks whose status file is to be read this time. A status file is written by the job's
  /// own account, so a job could write `exit 0` itself and run on: it is read again until
  /// the scheduler says the task ended (the wrapper writes it last, just before it exits),
  /// and only then trusted.
  public var tasksToRead: [Int] {
    tasks.filter { statuses[$0] == nil || !isDone($0) }
  }

  public var isFinished: Bool { stage == .finished }

  /// The task's status is read and the scheduler says it ended: its output is complete.
  public func isOver(_ task: Int) -> Bool { statuses[task] != nil && isDone(task) }

  func isDone(_ task: Int) -> Bool { schedulerUnknown || endedInScheduler.contains(task) }

  /// Tasks not done for good. For an array every task id counts, the ones in the
  /// still-pending rest (`123_[88-98%4]`) included, which the snapshot lists per task.
  var unfinished: [Int] { tasks.filter { !isDone($0) } }

  public mutating func step(_ seen: Observation) -> [Action] {
    var actions: [Action] = []
    let now = seen.now
    if seen.sawOutput {
      if startedAt == nil { startedAt = now }
      lastOutput = now
    }
    absorb(statuses: seen.statuses, now: now)
    if let answer = seen.snapshot { absorb(snapshot: answer, now: now, into: &actions) }
    if let error = seen.cancelError {
      actions.append(.note("Could not cancel job \(id): \(error); ci-cleanup will cancel it by name"))
    }
    if let error = seen.limitError {
      actions.append(.note("Could not lower job \(id)'s time limit: \(error); GitLab's timeout may stop it before Slurm does"))
    }

    switch stage {
    case .finished:
      return actions
    case .watching:
      if unfinished.isEmpty {
        if statuses.count < tasks.count {
          stage = .waitingForStatuses(until: now.addingTimeInterval(JobWatch.statusGraceSeconds))
          return actions
        }
        return actions + end(now: now)
      }
      watch(now: now, cancelRequested: seen.cancelRequested, reason: seen.pendingReason, into: &actions)
    case .waitingForStatuses(let until):
      if statuses.count == tasks.count || now >= until { return actions + end(now: now) }
    case .settling(let attempt, let nextAsk):
      // The tasks are over; a stop now ends the wait for their end states at once.
      if seen.cancelRequested {
        cancelledAt = cancelledAt ?? now
        return actions + finish(now: now)
      }
      if let answer = seen.ends {
        if case .success(let answered) = answer { ends = answered }
        if case .failure(let error) = answer, attempt == 1 {
          actions.append(.note("Asking \(schedulerName) how job \(id) ended: \(error); retrying"))
        }
        let settled: Bool
        if case .success = answer { settled = !unclearTasks.contains { JobWatch.isSettling(ends[$0]) } } else { settled = false }
        if settled || attempt >= JobWatch.settlingAttempts { return actions + finish(now: now) }
        stage = .settling(attempt: attempt, nextAsk: now.addingTimeInterval(1))
      } else if now >= nextAsk {
        stage = .settling(attempt: attempt + 1, nextAsk: .distantFuture)
        actions.append(.askEnds)
      }
    }
    return actions
  }

  mutating func absorb(statuses read: [Int: TaskStatus], now: Date) {
    for (task, status) in read where tasks.contains(task) {
      // A new status: ask the scheduler for its word now rather than at the next poll.
      if statuses[task] == nil && !isDone(task) { lastPoll = .distantPast }
      statuses[task] = status
      if startedAt == nil { startedAt = now }
    }
  }

  mutating func absorb(snapshot answer: Result<JobSnapshot, SchedulerError>, now: Date, into actions: inout [Action]) {
    switch answer {
    case .failure(let error):
      if unavailableSince == nil {
        unavailableSince = now
        actions.append(.note("\(schedulerName) is not answering (\(error)); the job keeps running, will keep asking"))
      }
    case .success(let snapshot):
      if unavailableSince != nil { actions.append(.note("\(schedulerName) answers again")) }
      unavailableSince = nil
      nextAnswerAt = snapshot.renewsAt.flatMap { $0 > now ? $0 : nil }
      if snapshot.unknown && !schedulerUnknown {
        schedulerUnknown = true
        statuses = [:]  // read again: written before the end, they are final now
      }
      pendingReason = nil
      for (task, state) in snapshot.tasks {
        switch state {
        case .ended: if endedInScheduler.insert(task).inserted { statuses[task] = nil }
        case .pending(let reason): pendingReason = reason
        case .running:
          if startedAt == nil { startedAt = now }
          runningSeen.insert(task)
        }
      }
      if let rest = snapshot.pendingRest { pendingReason = pendingReason ?? rest }
    }
  }

  /// While tasks run: the cancel, the polls, the heartbeats.
  mutating func watch(now: Date, cancelRequested: Bool, reason answered: String?, into actions: inout [Action]) {
    if cancelRequested && cancelledAt == nil {
      cancelledAt = now
      actions.append(.note("Cancelling \(schedulerName) job \(id): the runner stopped this CI job (cancelled or timed out)"))
      actions.append(.cancel)
      lastPoll = .distantPast
    }
    keepInsideClock(now: now, into: &actions)
    if let cancelledAt, now.timeIntervalSince(cancelledAt) > timing.cancelWaitSeconds {
      actions.append(
        .note("Job \(id) did not end within \(Int(timing.cancelWaitSeconds)) s of the cancel; ci-cleanup will cancel it again"))
      ended = false
      // The verdict is the cancel's whatever the tasks' ends: no settling.
      actions += [.drainToEnd] + finish(now: now)
      return
    }

    // Every unconfirmed task has written its status: only the scheduler's word is missing.
    let confirming = unfinished.allSatisfy { statuses[$0] != nil }
    if !confirming { confirmingPolls = 0 }
    if now.timeIntervalSince(lastPoll) >= pollInterval(confirming: confirming) || nextAnswerAt.map({ now >= $0 }) == true {
      lastPoll = now
      nextAnswerAt = nil
      if confirming { confirmingPolls += 1 }
      actions.append(.poll(fresh: confirming || endIsDue))
    }

    let waited = JobWatch.duration(now.timeIntervalSince(submittedAt))
    if reasonAsked {
      reasonAsked = false
      guard startedAt == nil else { return }
      let reason = answered ?? pendingReason.flatMap { $0 == "None" ? nil : $0 } ?? "no reason given yet"
      actions.append(.note("Job \(id) is waiting in the queue (\(reason)), \(waited) so far"))
    } else if now.timeIntervalSince(lastHeartbeat) >= timing.heartbeatSeconds {
      if startedAt == nil {
        // The scheduler's own reason is asked only at heartbeat time; the line follows
        // with its answer at the next step.
        actions.append(.askPendingReason)
        reasonAsked = true
        lastHeartbeat = now
      } else if now.timeIntervalSince(lastOutput) >= max(timing.heartbeatSeconds * 10, 300) {
        actions.append(.note("Job \(id) is running (no output for \(JobWatch.duration(now.timeIntervalSince(lastOutput)))), \(waited) since submission"))
        lastHeartbeat = now
      }
    }
  }

  /// Keeps the job inside GitLab's clock: each task's limit is lowered once it is seen
  /// started (the queue took its share of the time), and a job still pending once the time
  /// left cannot fit what it needs is cancelled, as GitLab would stop it anyway.
  mutating func keepInsideClock(now: Date, into actions: inout [Action]) {
    guard let budget, cancelledAt == nil else { return }
    guard startedAt != nil else {
      guard budget.cannotFit(at: now) else { return }
      guard fitRecheckAsked else {
        fitRecheckAsked = true
        actions.append(.poll(fresh: true))
        lastPoll = now
        return
      }
      let left = JobWatch.duration(max(0, budget.jobEnd.timeIntervalSince(now)))
      let needed = JobWatch.duration(Double(budget.neededSeconds))
      cancelledAt = now
      outOfTime =
        "\(schedulerName) job \(id) never started: GitLab would stop this CI job (\(budget.source)) before it could run its \(needed); a timeout, as GitLab would report it"
      actions.append(
        .note("Cancelling \(schedulerName) job \(id): still waiting in the queue, and the \(left) left before GitLab stops this CI job (\(budget.source), less the drain margin) cannot fit the \(needed) it needs"))
      actions.append(.cancel)
      lastPoll = .distantPast
      return
    }
    let started: [Int?] = isArray ? runningSeen.subtracting(limited).sorted() : (limited.contains(0) ? [] : [nil])
    for task in started {
      limited.insert(task ?? 0)
      if let minutes = budget.lowered(at: now) { actions.append(.lowerTimeLimit(task: task, minutes: minutes)) }
    }
  }

  /// Ask the scheduler only now and then while tasks run. A task that got SIGTERM (time
  /// limit, scancel) is about to end; one that wrote its status only waits for the
  /// scheduler's word: look sooner.
  func pollInterval(confirming: Bool) -> TimeInterval {
    if confirming { return min(0.05 * Double(1 << min(confirmingPolls, 5)), 1) }
    if endIsDue { return 1 }
    return startedAt == nil ? min(timing.pollSeconds, 5) : timing.pollSeconds
  }

  /// A cancel was sent or a task got SIGTERM (time limit, scancel): the job is ending.
  var endIsDue: Bool {
    cancelledAt != nil || statuses.values.contains { if case .terminated = $0 { return true } else { return false } }
  }

  var unclearTasks: [Int] {
    tasks.filter { if case .exited? = statuses[$0] { return false } else { return true } }
  }

  /// The tasks are over: read the output to its end, then settle the unclear ends.
  mutating func end(now: Date) -> [Action] {
    if unclearTasks.isEmpty { return [.drainToEnd] + finish(now: now) }
    stage = .settling(attempt: 1, nextAsk: .distantFuture)
    return [.drainToEnd, .askEnds]
  }

  mutating func finish(now: Date) -> [Action] {
    stage = .finished
    let outcomes = Dictionary(uniqueKeysWithValues: tasks.map { ($0, TaskOutcome.classify(status: statuses[$0], end: ends[$0])) })
    var actions: [Action] = []
    actions.append(.summarize(headline: JobWatch.headline(id: id, scheduler: schedulerName, outcomes: outcomes), outcomes: outcomes))
    let queued = (startedAt ?? now).timeIntervalSince(submittedAt)
    let ran = startedAt.map { now.timeIntervalSince($0) } ?? 0
    actions.append(
      .note("\(schedulerName) job \(id) ended: queued about \(JobWatch.duration(queued)), ran about \(JobWatch.duration(ran))"))
    let verdict = JobVerdict.decide(
      jobID: id, outcomes: outcomes, isArray: isArray, cancelled: cancelledAt != nil, scheduler: schedulerName,
      partialExitCode: partialExitCode, outOfTime: outOfTime)
    actions.append(.finish(verdict: verdict, ended: ended))
    return actions
  }

  static func isSettling(_ end: TaskEnd?) -> Bool {
    if case .other(let state)? = end?.kind {
      return ["COMPLETING", "RUNNING", "PENDING", "CONFIGURING", "SIGNALING", "STAGE_OUT"].contains(state)
    }
    return false
  }

  static func headline(id: JobID, scheduler: String, outcomes: [Int: TaskOutcome]) -> String {
    let succeeded = outcomes.values.filter { $0 == .succeeded }.count
    return "Summary of \(scheduler) job \(id): \(outcomes.count) tasks, \(succeeded) succeeded, \(outcomes.count - succeeded) did not"
  }

  static func duration(_ seconds: TimeInterval) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total)s" }
    if total < 3600 { return "\(total / 60)m\(total % 60)s" }
    return "\(total / 3600)h\(total % 3600 / 60)m"
  }
}
