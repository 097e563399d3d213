#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling
import ChildProcesses
public import SbatchModel

#if canImport(Glibc)
  import Glibc
#endif

/// The real backend: sbatch, squeue, scontrol, sacct and scancel, always as argv (never a
/// shell), with a sanitised environment, and with transient controller errors retried
/// with backoff instead of failing the CI job.
public struct SlurmScheduler: Scheduler {
  public let name = "Slurm"
  let runner: any CommandRunner
  /// The environment every Slurm command gets: no CI variables.
  let environment: [String: String]
  let retry: RetryPolicy

  /// Commands run with this process's own rights: under run_as the phase already is the
  /// job's account (docs/executor.md, "Who runs what as whom").
  public init(runner: any CommandRunner, environment: [String: String], retry: RetryPolicy = RetryPolicy()) {
    self.runner = runner
    self.environment = environment
    self.retry = retry
  }

  /// Runs a Slurm command, retrying while the controller is unreachable. The waits end at
  /// once when the CI job is stopped, except for a `scancel` (`whileCancelling`): that is
  /// what a stopped job still needs to get through.
  func slurm(_ arguments: [String], patience: TimeInterval? = nil, whileCancelling: Bool = false) throws -> CommandResult {
    var delay = retry.firstDelay
    let deadline = Date().addingTimeInterval(patience ?? retry.patience)
    while true {
      let result: CommandResult
      do {
        result = try runner.run(Command(arguments, environment: environment, timeout: retry.commandTimeout))
      } catch {
        throw SchedulerError(.unavailable, "cannot run \(arguments[0]): \(error)")
      }
      let transient = !result.status.isSuccess && (SlurmErrorText.isTransient(result.stderr) || result.status == .signaled(9))
      if !transient { return result }
      if Date().addingTimeInterval(delay) > deadline {
        throw SchedulerError(
          .unavailable,
          "Slurm did not answer (\(arguments[0]): \(SlurmErrorText.summary(result.stderr))); gave up after \(Int(patience ?? retry.patience)) s"
        )
      }
      if whileCancelling { retry.sleep(delay) } else { try pause(delay, "the CI job was stopped while Slurm did not answer \(arguments[0])") }
      delay = min(delay * 2, retry.maxDelay)
    }
  }

  public func checkAvailable() throws {
    let result = try slurm(["scontrol", "ping"])
    guard result.status.isSuccess, result.stdout.contains("is UP") else {
      let detail = result.stdout.split(separator: "\n").first.map(String.init) ?? SlurmErrorText.summary(result.stderr)
      throw SchedulerError(.unavailable, "Slurm is not available: \(detail)")
    }
  }

  /// The sbatch argv for a job: the driver's own options first, then the user's, then the
  /// wrapper (`SbatchCommand`, which `ci-gen explain` prints too).
  public static func sbatchArguments(for job: BatchJob) -> [String] {
    SbatchCommand.arguments(
      jobName: job.name, script: job.wrapperScript, directory: job.directory, workingDirectory: job.workingDirectory,
      request: job.request)
  }

  /// Submits, and keeps at it while the answer is "not now": a controller that does not
  /// answer (retried for `patience`), or a queue that is full for this user or the site
  /// (retried with a line per wait, for `queuePatience`). A wrong request is refused at once
  /// (`.requestRefused`, the user's build failure). An sbatch whose answer was lost may have
  /// submitted the job: it is looked up by name, never submitted twice.
  public func submit(_ job: BatchJob) throws -> JobID {
    var delay = retry.firstDelay
    var queueDelay = retry.queueFirstDelay
    let deadline = Date().addingTimeInterval(retry.patience)
    let queueDeadline = Date().addingTimeInterval(retry.queuePatience)
    var mayExist = false
    while true {
      if retry.isCancelled() {
        throw SchedulerError(.cancelled, "the CI job was stopped before Slurm accepted its job")
      }
      if mayExist, let existing = try adoptable(job) { return existing }
      let result: CommandResult
      do {
        result = try runner.run(
          // sbatch --export=ALL hands its own environment to the job: the job's sanitised one.
          Command(SlurmScheduler.sbatchArguments(for: job), environment: job.environment, timeout: retry.commandTimeout))
      } catch {
        throw SchedulerError(.unavailable, "cannot run sbatch: \(error)")
      }
      if result.status.isSuccess {
        guard let id = SbatchOutput.jobID(from: result.stdout) else {
          throw SchedulerError(.unexpectedOutput, "sbatch printed no job id: \(result.stdout.prefix(200))")
        }
        return id
      }
      var refusal = SbatchRefusal.classify(status: result.status, stderr: result.stderr)
      if case .accountingPolicy(let reason) = refusal { refusal = accountingVerdict(reason: reason, job: job) }
      switch refusal {
      case .request(let reason):
        throw SchedulerError(.requestRefused, "Slurm refused the job: \(reason)")
      case .system(let reason), .accountingPolicy(let reason):
        throw SchedulerError(.submissionRefused, "Slurm refused the job: \(reason)")
      case .queueFull(let reason):
        // Nothing was submitted; wait for room within the CI job's own time.
        guard Date().addingTimeInterval(queueDelay) < queueDeadline else {
          throw SchedulerError(.unavailable, "\(reason) for longer than this CI job may wait (\(Int(retry.queuePatience)) s)")
        }
        retry.note("\(reason), retrying in \(Int(queueDelay)) s")
        try pause(queueDelay)
        queueDelay = min(queueDelay * 2, retry.queueMaxDelay)
      case .transient(let reason), .maybeSubmitted(let reason):
        // The controller may have accepted the job all the same: before sbatch runs again,
        // the job is looked up by name and adopted rather than submitted twice.
        mayExist = true
        guard Date().addingTimeInterval(delay) < deadline else {
          throw SchedulerError(.unavailable, "Slurm did not answer sbatch (\(reason)); gave up after \(Int(retry.patience)) s")
        }
        retry.note("Slurm did not answer sbatch (\(reason)), retrying in \(Int(delay.rounded(.up))) s")
        try pause(delay)
        delay = min(delay * 2, retry.maxDelay)
      }
    }
  }

  /// The job of that name, if sbatch submitted it after all. When the queue cannot be asked
  /// either, nobody knows: the caller must treat the job as possibly running.
  func adoptable(_ job: BatchJob) throws -> JobID? {
    do {
      return try jobs(named: job.name, states: "all").first
    } catch {
      throw SchedulerError(.unavailable, "sbatch's answer was lost and Slurm cannot say whether it took the job: \(error)")
    }
  }

  /// Waits, and gives up at once when the CI job is stopped.
  func pause(_ seconds: TimeInterval, _ stopped: String = "the CI job was stopped before Slurm accepted its job") throws {
    var left = seconds
    while left > 0 {
      if retry.isCancelled() { throw SchedulerError(.cancelled, stopped) }
      let step = min(left, 0.2)
      retry.sleep(step)
      left -= step
    }
  }

  /// A submit limit reached, or a size/time limit? Asks accounting for the user's limits
  /// and squeue for what the user has queued (one call each).
  func accountingVerdict(reason: String, job: BatchJob) -> SbatchRefusal {
    let user = SlurmScheduler.currentUser()
    func ask(_ arguments: [String]) -> String {
      guard let result = try? runner.run(Command(arguments, environment: environment, timeout: retry.commandTimeout)),
        result.status.isSuccess
      else { return "" }
      return result.stdout
    }
    let associations = SubmitLimit.parseAssociations(
      ask(["sacctmgr", "-n", "-P", "show", "assoc", "where", "user=\(user)", "format=DefaultQOS,MaxSubmit"]))
    let qos = job.request.value(of: "qos") ?? associations.defaultQOS ?? "normal"
    let limits = SubmitLimit.parseQOS(ask(["sacctmgr", "-n", "-P", "show", "qos", "where", "name=\(qos)", "format=Name,MaxSubmitPU"]))
      + associations.limits
    var queued: [String: Int] = [:]
    for line in ask(["squeue", "-h", "--me", "-r", "-o", "%q"]).split(separator: "\n") { queued[String(line), default: 0] += 1 }
    let tasks = (try? job.request.array)??.taskIDs.count ?? 1
    return SbatchRefusal.classifyAccounting(reason: reason, limits: limits, queued: queued, tasks: tasks)
  }

  /// Whose limits apply: the account the Slurm commands run as.
  static func currentUser() -> String {
    guard let entry = getpwuid(geteuid()) else { return "\(geteuid())" }
    return String(cString: entry.pointee.pw_name)
  }

  /// `states` as squeue's `-t`: `all` includes jobs that just ended (slurmctld keeps them
  /// for MinJobAge), which a lost sbatch answer may have started already.
  func jobs(named name: String, states: String) throws -> [JobID] {
    let result = try runner.run(
      Command(["squeue", "-h", "--me", "--name=\(name)", "-t", states, "-o", "%F"], environment: environment,
              timeout: retry.commandTimeout))
    guard result.status.isSuccess else {
      throw SchedulerError(.unavailable, "squeue --name=\(name): \(SlurmErrorText.summary(result.stderr))")
    }
    return Array(Set(result.stdout.split(separator: "\n").map { JobID(String($0)) })).sorted { $0.raw < $1.raw }
  }

  /// Jobs of that name not yet ending (a cancelled job is COMPLETING for a moment).
  public func liveJobs(named name: String) throws -> [JobID] { try jobs(named: name, states: "PD,R,S,CF,RQ,RH,RS") }

  /// Polls accounting first: sacct asks slurmdbd and costs slurmctld nothing. A job that
  /// accounting does not list yet (or no accounting at all) falls back to squeue. A `fresh`
  /// look asks squeue first: slurmctld knows a task ended at once, while slurmdbd hears of
  /// it seconds later, and every second of that is the CI job's wait.
  public func snapshot(of id: JobID, fresh: Bool) throws -> JobSnapshot {
    if fresh, let listed = try? queueSnapshot(of: id), !listed.tasks.isEmpty || listed.unknown { return listed }
    let accounted = try runner.run(
      Command(["sacct", "-n", "-P", "-X", "-j", id.raw, "--format=\(SacctRecord.pollFormat)"],
              environment: environment, timeout: retry.commandTimeout))
    if accounted.status.isSuccess {
      let snapshot = SacctRecord.snapshot(SacctRecord.parseAll(accounted.stdout))
      if !snapshot.tasks.isEmpty || snapshot.pendingRest != nil { return snapshot }
    }
    return try queueSnapshot(of: id)
  }

  /// slurmctld's view, one attempt only: the caller polls again later anyway.
  func queueSnapshot(of id: JobID) throws -> JobSnapshot {
    let result = try runner.run(
      Command(["squeue", "-h", "-r", "-t", "all", "-j", id.raw, "-o", SqueueRecord.format],
              environment: environment, timeout: retry.commandTimeout))
    if result.status.isSuccess { return SqueueRecord.snapshot(SqueueRecord.parseAll(result.stdout)) }
    if SlurmErrorText.isUnknownJob(result.stderr) { return JobSnapshot(unknown: true) }
    throw SchedulerError(.unavailable, "squeue: \(SlurmErrorText.summary(result.stderr))")
  }

  public func finalStates(of id: JobID, in directory: String) throws -> TaskEnds {
    // Accounting first (no slurmctld RPC); it may lag a moment behind, which the caller's
    // wait for settled states absorbs. Then slurmctld's own view.
    let accountedFirst = try runner.run(
      Command(["sacct", "-P", "-n", "-X", "-j", id.raw, "--format=\(SacctRecord.format)"],
              environment: environment, timeout: retry.commandTimeout))
    if accountedFirst.status.isSuccess {
      let records = SacctRecord.parseAll(accountedFirst.stdout)
      // COMPLETING is over for the watch but not an end state yet: slurmctld knows sooner.
      let settled = !records.isEmpty
        && records.allSatisfy { SlurmState.taskState($0.state, reason: "") == .ended && !$0.state.hasPrefix("COMPLETING") }
      if settled {
        var ends = TaskEnds()
        for record in records {
          if let task = record.taskID { ends.byTask[task] = record.end } else { ends.otherwise = record.end }
        }
        return ends
      }
    }
    let shown = try slurm(["scontrol", "show", "job", "-o", id.raw])
    if shown.status.isSuccess {
      let jobs = ScontrolJob.parseAll(shown.stdout)
      var ends = TaskEnds()
      for job in jobs {
        if let task = job.taskID { ends.byTask[task] = job.end } else { ends.otherwise = job.end }
      }
      if !jobs.isEmpty { return ends }
    } else if !SlurmErrorText.isUnknownJob(shown.stderr) {
      throw SchedulerError(.unavailable, "scontrol: \(SlurmErrorText.summary(shown.stderr))")
    }
    // Purged from the controller's memory (MinJobAge): ask accounting.
    let accounted = try slurm(["sacct", "-P", "-n", "-X", "-j", id.raw, "--format=\(SacctRecord.format)"])
    guard accounted.status.isSuccess else {
      throw SchedulerError(.unavailable, "sacct: \(SlurmErrorText.summary(accounted.stderr))")
    }
    var ends = TaskEnds()
    for record in SacctRecord.parseAll(accounted.stdout) {
      if let task = record.taskID { ends.byTask[task] = record.end } else { ends.otherwise = record.end }
    }
    return ends
  }

  /// Accounting's record of what each task used; empty when there is none (no slurmdbd,
  /// or it has not heard of the job yet: the summary shows "-", nothing waits for it).
  public func usage(of id: JobID) -> [Int: TaskUsage] {
    guard let result = try? runner.run(
      Command(["sacct", "-P", "-n", "-j", id.raw, "--format=\(SacctUsage.format)"], environment: environment,
              timeout: retry.commandTimeout)),
      result.status.isSuccess
    else { return [:] }
    return SacctUsage.parse(result.stdout)
  }

  public func submissionCommand(for job: BatchJob) -> [String]? { SlurmScheduler.sbatchArguments(for: job) }

  /// squeue's reason (Priority, Resources, BeginTime, QOSMaxJobsPerUserLimit, ...);
  /// accounting only says "None" while a job pends.
  public func pendingReason(of id: JobID) -> String? {
    guard let result = try? runner.run(
      Command(["squeue", "-h", "-j", id.raw, "-t", "PD", "-o", "%r"], environment: environment,
              timeout: retry.commandTimeout)),
      result.status.isSuccess
    else { return nil }
    return SlurmScheduler.joinedReasons(Set(result.stdout.split(separator: "\n").map(String.init)))
  }

  /// A job's reasons in one line (an array's tasks may wait for different ones).
  static func joinedReasons(_ reasons: Set<String>) -> String? {
    let given = reasons.filter { !$0.isEmpty }
    return given.isEmpty ? nil : given.sorted().joined(separator: ", ")
  }

  /// Every job of the account in slurmctld's view (`AccountListing`), one attempt: the
  /// shared status file's refresher asks this once per tick for all CI jobs of the host.
  public func accountListing() throws -> String {
    let result = try runner.run(Command(AccountListing.arguments, environment: environment, timeout: retry.commandTimeout))
    guard result.status.isSuccess else { throw SchedulerError(.unavailable, "squeue --me: \(SlurmErrorText.summary(result.stderr))") }
    return result.stdout
  }

  public func cancel(_ id: JobID) throws {
    let result = try slurm(["scancel", id.raw], patience: retry.cancelPatience, whileCancelling: true)
    if result.status.isSuccess || SlurmErrorText.isUnknownJob(result.stderr)
      || result.stderr.contains("already completing or completed")
    {
      return
    }
    throw SchedulerError(.commandFailed, "scancel \(id): \(SlurmErrorText.summary(result.stderr))")
  }

  /// `scontrol update`, which Slurm allows a job's owner when it lowers the limit. Retried
  /// only briefly: a limit not lowered leaves GitLab's kill, as without the clock.
  public func lowerTimeLimit(of id: JobID, task: Int?, toMinutes minutes: Int) throws {
    let job = task.map { "\(id.raw)_\($0)" } ?? id.raw
    let result = try slurm(["scontrol", "update", "JobId=\(job)", "TimeLimit=\(minutes)"], patience: retry.cancelPatience)
    guard result.status.isSuccess else {
      throw SchedulerError(.commandFailed, "scontrol update JobId=\(job) TimeLimit=\(minutes): \(SlurmErrorText.summary(result.stderr))")
    }
  }

  public func cancel(named name: String) throws {
    let result = try slurm(["scancel", "--me", "--name=\(name)"], patience: retry.cancelPatience, whileCancelling: true)
    guard result.status.isSuccess else {
      throw SchedulerError(.commandFailed, "scancel --name=\(name): \(SlurmErrorText.summary(result.stderr))")
    }
  }
}

/// How long and how often to retry a controller that does not answer.
public struct RetryPolicy: Sendable {
  public var firstDelay: TimeInterval = 1
  public var maxDelay: TimeInterval = 15
  /// How long a submission or query may keep failing before the job is given up.
  public var patience: TimeInterval = 300
  public var cancelPatience: TimeInterval = 30
  public var commandTimeout: TimeInterval = 60
  public var sleep: @Sendable (TimeInterval) -> Void = { sleepSeconds($0) }
  /// A full queue (submit limits, MaxJobCount) is waited out for this long: the CI job's
  /// own time, set by the composition root from CI_JOB_TIMEOUT.
  public var queuePatience: TimeInterval = 3600
  public var queueFirstDelay: TimeInterval = 5
  public var queueMaxDelay: TimeInterval = 60
  /// Set when the runner stops the CI job: every wait ends at once.
  public var isCancelled: @Sendable () -> Bool = { false }
  /// One line per wait, into the CI log.
  public var note: @Sendable (String) -> Void = { _ in }

  public init() {}
}
