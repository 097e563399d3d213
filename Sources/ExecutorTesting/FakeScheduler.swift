import Foundation
import SbatchModel
import Scheduling
import Synchronization

/// One task's life in a `FakeScheduler`: how long it pends and runs, what it prints, how it
/// ends. The fake writes the output and status files the real wrapper would, at the moments
/// the manual clock reaches.
public struct FakeTask: Sendable {
  public enum Ending: Sendable {
    /// The script exits with this code; the wrapper writes `exit N`.
    case exit(Int32)
    /// The scheduler ends the task without its status (node failure, time limit, OOM).
    case killed(TaskEnd)
    /// The job writes `exit N` into its own status file and runs on until cancelled.
    case writesStatusAndRunsOn(Int32)
    /// Runs until cancelled.
    case hangs
  }
  public var pendSeconds: TimeInterval
  public var pendReason: String
  public var runSeconds: TimeInterval
  public var output: String
  public var ending: Ending
  /// What accounting says the task used (nil: it does not know).
  public var usage: TaskUsage?

  public init(
    pendSeconds: TimeInterval = 0, pendReason: String = "Priority", runSeconds: TimeInterval = 1, output: String = "",
    ending: Ending = .exit(0), usage: TaskUsage? = nil
  ) {
    self.usage = usage
    self.pendSeconds = pendSeconds
    self.pendReason = pendReason
    self.runSeconds = runSeconds
    self.output = output
    self.ending = ending
  }
}

/// A scriptable `Scheduler` on a `ManualClock`, for in-process lifecycle tests: jobs pend,
/// run, print and end as `plan` says; the controller can be away for a while; every call is
/// recorded.
public final class FakeScheduler: Scheduler {
  public let name = "Fake"

  struct Job {
    var id: JobID
    var batch: BatchJob
    var submittedAt: Date
    var cancelledAt: Date?
    var written: Set<String> = []
    /// Lowered time limits in minutes, by task (nil: the whole job).
    var limits: [Int?: Int] = [:]
  }
  struct State {
    var jobs: [Job] = []
    var calls: [String] = []
  }
  private let state = Mutex(State())
  private let clock: ManualClock
  /// The life of task `n` of each submitted job.
  public let plan: @Sendable (Int) -> FakeTask
  /// Seconds after the first submission during which every query fails as unavailable.
  public let away: Range<TimeInterval>?
  public let refusal: SchedulerError?

  public init(
    clock: ManualClock, away: Range<TimeInterval>? = nil, refusal: SchedulerError? = nil,
    plan: @escaping @Sendable (Int) -> FakeTask
  ) {
    self.clock = clock
    self.plan = plan
    self.away = away
    self.refusal = refusal
    clock.observe { [weak self] now in self?.catchUp(now) }
  }

  /// What was called, in order: "submit", "snapshot", "snapshot fresh", "finalStates",
  /// "cancel 1", "cancel named ci-x-1", "liveJobs", "pendingReason", "lowerTimeLimit 1 7"
  /// (job 1 to 7 minutes; "1_3" for task 3).
  public var calls: [String] { state.withLock { $0.calls } }
  public var submitted: [BatchJob] { state.withLock { $0.jobs.map(\.batch) } }

  func record(_ call: String) { state.withLock { $0.calls.append(call) } }

  func checkAnswering() throws {
    let first = state.withLock { $0.jobs.first?.submittedAt }
    if let away, let first, away.contains(clock.now.timeIntervalSince(first)) {
      throw SchedulerError(.unavailable, "the fake controller is away")
    }
  }

  public func checkAvailable() throws {
    record("checkAvailable")
    if let away, away.lowerBound <= 0 { throw SchedulerError(.unavailable, "the fake controller is away") }
  }

  public func submit(_ job: BatchJob) throws -> JobID {
    record("submit")
    if let refusal { throw refusal }
    let id = state.withLock { state in
      let id = JobID("\(state.jobs.count + 1)")
      state.jobs.append(Job(id: id, batch: job, submittedAt: clock.now))
      return id
    }
    catchUp(clock.now)
    return id
  }

  enum Phase: Equatable {
    case pending
    case running
    case ended(TaskEnd, status: TaskStatus?)
  }

  /// Task `task` of `job` at `now`.
  func phase(of job: Job, task: Int, at now: Date) -> Phase {
    let life = plan(task)
    let start = job.submittedAt.addingTimeInterval(life.pendSeconds)
    let end = start.addingTimeInterval(life.runSeconds)
    if let cancelled = job.cancelledAt, cancelled <= now, cancelled < end || !life.endsByItself {
      let started = cancelled >= start
      return .ended(TaskEnd(kind: .cancelled(by: "0")), status: started ? .terminated(143) : nil)
    }
    if now < start { return .pending }
    // A lowered limit ends the task as the scheduler's TIMEOUT: SIGTERM, which the wrapper
    // records as `terminated 143`.
    if let minutes = job.limits[task] ?? job.limits[nil], now >= start.addingTimeInterval(TimeInterval(minutes * 60)),
      start.addingTimeInterval(TimeInterval(minutes * 60)) < end || !life.endsByItself
    {
      return .ended(TaskEnd(kind: .timeout, timeLimit: SlurmTime.format(seconds: minutes * 60)), status: .terminated(143))
    }
    if now < end { return .running }
    switch life.ending {
    case .exit(let code): return .ended(TaskEnd(kind: code == 0 ? .completed : .failed, exitCode: code), status: .exited(code))
    case .killed(let end): return .ended(end, status: nil)
    case .writesStatusAndRunsOn, .hangs: return .running
    }
  }

  /// Writes the files the job would have written by `now`: its output once it starts, its
  /// status when it ends (or when it forges one).
  func catchUp(_ now: Date) {
    let jobs = state.withLock { $0.jobs }
    for (index, job) in jobs.enumerated() {
      for task in job.batch.taskIDs {
        let life = plan(task)
        let outputPath = JobFiles.output(in: job.batch.directory, task: task, isArray: job.batch.isArray)
        let statusPath = JobFiles.status(in: job.batch.directory, task: task, isArray: job.batch.isArray)
        let start = job.submittedAt.addingTimeInterval(life.pendSeconds)
        let started = now >= start && (job.cancelledAt.map { $0 >= start } ?? true)
        if started, !job.written.contains(outputPath) {
          try? Data(life.output.utf8).write(to: URL(fileURLWithPath: outputPath))
          mark(index, outputPath)
        }
        var status: TaskStatus? = nil
        if case .ended(_, let written) = phase(of: job, task: task, at: now) { status = written }
        let forgedAt = start.addingTimeInterval(life.runSeconds)
        if case .writesStatusAndRunsOn(let code) = life.ending, now >= forgedAt,
          job.cancelledAt.map({ $0 >= forgedAt }) ?? true
        {
          status = .exited(code)
        }
        if let status, !job.written.contains(statusPath) {
          let text: String
          switch status {
          case .exited(let code): text = "exit \(code)\n"
          case .terminated(let code): text = "terminated \(code)\n"
          }
          // Atomically, as the wrapper's mv does.
          try? Data(text.utf8).write(to: URL(fileURLWithPath: statusPath), options: .atomic)
          mark(index, statusPath)
        }
      }
    }
  }

  func mark(_ index: Int, _ path: String) { state.withLock { _ = $0.jobs[index].written.insert(path) } }

  func job(_ id: JobID) -> Job? { state.withLock { $0.jobs.first { $0.id == id } } }

  public func snapshot(of id: JobID, fresh: Bool) throws -> JobSnapshot {
    record(fresh ? "snapshot fresh" : "snapshot")
    try checkAnswering()
    guard let job = job(id) else { return JobSnapshot(unknown: true) }
    var snapshot = JobSnapshot()
    for task in job.batch.taskIDs {
      switch phase(of: job, task: task, at: clock.now) {
      case .pending: snapshot.tasks[task] = .pending(reason: plan(task).pendReason)
      case .running: snapshot.tasks[task] = .running
      case .ended: snapshot.tasks[task] = .ended
      }
    }
    return snapshot
  }

  public func finalStates(of id: JobID, in directory: String) throws -> TaskEnds {
    record("finalStates")
    try checkAnswering()
    guard let job = job(id) else { return TaskEnds() }
    var ends = TaskEnds()
    for task in job.batch.taskIDs {
      if case .ended(let end, _) = phase(of: job, task: task, at: clock.now) { ends.byTask[task] = end }
    }
    return ends
  }

  public func cancel(_ id: JobID) throws {
    record("cancel \(id)")
    try checkAnswering()
    markCancelled(id)
  }

  public func lowerTimeLimit(of id: JobID, task: Int?, toMinutes minutes: Int) throws {
    record("lowerTimeLimit \(id)\(task.map { "_\($0)" } ?? "") \(minutes)")
    try checkAnswering()
    state.withLock { state in
      for index in state.jobs.indices where state.jobs[index].id == id { state.jobs[index].limits[task] = minutes }
    }
    catchUp(clock.now)
  }

  func markCancelled(_ id: JobID) {
    state.withLock { state in
      for index in state.jobs.indices where state.jobs[index].id == id && state.jobs[index].cancelledAt == nil {
        state.jobs[index].cancelledAt = clock.now
      }
    }
    catchUp(clock.now)
  }

  public func cancel(named name: String) throws {
    record("cancel named \(name)")
    try checkAnswering()
    for job in state.withLock({ $0.jobs }) where job.batch.name == name { markCancelled(job.id) }
  }

  public func liveJobs(named name: String) throws -> [JobID] {
    record("liveJobs")
    try checkAnswering()
    let now = clock.now
    return state.withLock { $0.jobs }.filter { job in
      job.batch.name == name && job.batch.taskIDs.contains { task in
        if case .ended = phase(of: job, task: task, at: now) { return false } else { return true }
      }
    }.map(\.id)
  }

  /// The sbatch line the Slurm backend would run, so the log's reproducer is the real one.
  public func submissionCommand(for job: BatchJob) -> [String]? {
    SbatchCommand.arguments(
      jobName: job.name, script: job.wrapperScript, directory: job.directory, workingDirectory: job.workingDirectory,
      request: job.request)
  }

  /// Each ended task's use as its plan says (`FakeTask.usage`), once asked.
  public func usage(of id: JobID) -> [Int: TaskUsage] {
    record("usage")
    guard let job = job(id) else { return [:] }
    var usage: [Int: TaskUsage] = [:]
    for task in job.batch.taskIDs {
      if case .ended = phase(of: job, task: task, at: clock.now), let used = plan(task).usage { usage[task] = used }
    }
    return usage
  }

  public func pendingReason(of id: JobID) -> String? {
    record("pendingReason")
    guard let job = job(id) else { return nil }
    let reasons = job.batch.taskIDs.compactMap { task in
      phase(of: job, task: task, at: clock.now) == .pending ? plan(task).pendReason : nil
    }
    return reasons.first
  }
}

extension FakeTask {
  var endsByItself: Bool {
    switch ending {
    case .exit, .killed: return true
    case .writesStatusAndRunsOn, .hangs: return false
    }
  }
}
