import ChildProcesses
public import CustomExecutorAPI
// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import Scheduling
public import SbatchModel

#if canImport(Glibc)
  import Glibc
#endif

/// run_exec: one stage of the CI job. User-script stages go to the scheduler as a batch
/// job whose output is streamed back live; the others (git, caches, artifacts) run here with
/// bash, where the network and `gitlab-runner` are.
public struct RunPhase: Sendable {
  public let context: JobContext
  public let scheduler: any Scheduler
  public let console: DriverConsole
  public let cancellation: CancellationFlag

  public init(context: JobContext, scheduler: any Scheduler, console: DriverConsole, cancellation: CancellationFlag) {
    self.context = context
    self.scheduler = scheduler
    self.console = console
    self.cancellation = cancellation
  }

  var settings: DriverSettings { context.settings }

  /// Driver notes go to stderr, which the runner interleaves with stdout in the CI log; a
  /// job whose last output had no newline would have the note glued to it.
  func note(after lastByte: UInt8?, _ text: String) {
    if let lastByte, lastByte != UInt8(ascii: "\n") { console.note("\n" + text) } else { console.note(text) }
  }

  /// Runs one stage; `script` is the runner's stage script (read by the privileged part
  /// when there is one: the runner's copy is private to root).
  public func run(script: Data, stageName: String) throws {
    let stage = RunStage(stageName)
    if stage.isUserScript || (stage == .afterScript && settings.afterScript == .scheduler) {
      try runOnScheduler(script: script, stage: stage)
    } else {
      try runLocally(script: script, stage: stage)
    }
  }

  /// The environment a job or a local stage gets: the driver's own basics, never a CI
  /// variable (those reach the job through the stage script, which exports them).
  public static func jobEnvironment(from environment: RunnerEnvironment) -> [String: String] {
    let passed = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "SHELL", "SLURM_CONF"]
    var result: [String: String] = [:]
    for (key, value) in environment.values where passed.contains(key) || key.hasPrefix("LC_") {
      result[key] = value
    }
    if result["PATH"] == nil { result["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
    return result
  }

  func runLocally(script: Data, stage: RunStage) throws {
    let path = "\(try nextStageDirectory(stage))/script.sh"
    try PrivateFiles.write(script, to: path, mode: 0o700)
    let child: ChildProcess
    do {
      child = try ChildProcess(
        arguments: ["bash", path], environment: RunPhase.jobEnvironment(from: context.environment),
        stdout: .inherit, stderr: .inherit)
    } catch {
      throw DriverFailure.system("cannot start bash for the stage: \(error)")
    }
    let status = child.wait()
    if status != .exited(0) {
      throw DriverFailure.build(exitCode: status.shellStatus, message: nil)
    }
  }

  /// The job's sbatch options: the admin's defaults, the user's SCHEDULER_PARAMETERS
  /// (checked against the admin's allowed/denied lists and caps), and what the driver adds
  /// (a time limit from the CI job's timeout, never over the cap; a memory size under a
  /// memory cap).
  public static func request(for context: JobContext) throws -> JobRequest {
    let settings = context.settings
    let defaults = try JobRequest.parse(settings.defaultParameters)
    let user = try JobRequest.parse(context.environment.job("SCHEDULER_PARAMETERS") ?? "")
    return try settings.policy.request(defaults: defaults, user: user, timeoutSeconds: context.jobTimeoutSeconds)
  }

  func nextStageDirectory(_ stage: RunStage) throws -> String {
    try PrivateFiles.makeDirectory(context.jobDirectory)
    var attempt = 1
    while FileManager.default.fileExists(atPath: "\(context.jobDirectory)/\(stage)-\(attempt)") { attempt += 1 }
    let directory = "\(context.jobDirectory)/\(stage)-\(attempt)"
    try PrivateFiles.makeDirectory(directory)
    return directory
  }

  func runOnScheduler(script: Data, stage: RunStage) throws {
    let request: JobRequest
    do {
      request = try RunPhase.request(for: context)
    } catch let error as JobRequest.ParseError {
      throw DriverFailure.build(exitCode: 1, message: error.message)
    }
    let directory = try nextStageDirectory(stage)
    let stagedScript = "\(directory)/script.sh"
    let wrapper = "\(directory)/wrapper.sh"
    try PrivateFiles.write(script, to: stagedScript, mode: 0o700)
    try PrivateFiles.write(
      Data(WrapperScript.render(stageScript: stagedScript, directory: directory).utf8), to: wrapper, mode: 0o700)
    try PrivateFiles.makeDirectory(context.buildsDirectory)

    let ledger = JobsLedger(context: context)
    var environment = RunPhase.jobEnvironment(from: context.environment)
    if let ledger { environment[JobsLedger.variable] = ledger.path }
    let job = BatchJob(
      name: context.schedulerJobName, wrapperScript: wrapper, directory: directory,
      workingDirectory: context.buildsDirectory, request: request, environment: environment)

    // Recorded before sbatch runs: if we are killed mid-submission, cleanup cancels by name.
    var state = JobState.load(context.stateFile)
    state.submissions.append(.init(stage: stage.description, name: job.name, id: nil, finished: false))
    let index = state.submissions.count - 1
    try state.save(context.stateFile)

    let submittedAt = Date()
    let id: JobID
    do {
      id = try scheduler.submit(job)
    } catch let error as SchedulerError {
      // Only a refusal means nothing was submitted; otherwise (a lost answer, a cancel
      // mid-wait) the job may exist, and cleanup must look for it by name.
      if error.code == .requestRefused || error.code == .submissionRefused {
        state.submissions[index].finished = true
        try? state.save(context.stateFile)
      }
      throw error
    }
    state.submissions[index].id = id
    try state.save(context.stateFile)
    let options = request.arguments.isEmpty ? "no options" : request.arguments.joined(separator: " ")
    console.note("Submitted \(scheduler.name) job \(id) (\(job.name)) for \(stage): \(options)")
    var entry = JobsLedger.Record(
      event: "submitted", ci_job_id: context.jobID, ci_job_name: context.environment.job("CI_JOB_NAME") ?? "",
      ci_job_stage: context.environment.job("CI_JOB_STAGE") ?? "", runner_stage: stage.description, scheduler: scheduler.name,
      scheduler_job_id: id.raw, host: ProcessInfo.processInfo.hostName, time: submittedAt.timeIntervalSince1970, result: nil)
    ledger?.append(entry)

    let (verdict, ended) = follow(job: job, id: id, submittedAt: submittedAt)
    // A job that failed by the scheduler's hand (node failure, lost job) can still be
    // listed as running, and cleanup skips finished submissions: cancel it here. A build
    // failure wrote its status file, so that job has ended and needs no extra RPC.
    if case .some(.system) = verdict { try? scheduler.cancel(id) }
    entry.event = "ended"
    entry.result = verdict == nil ? "succeeded" : "failed"
    entry.time = Date().timeIntervalSince1970
    ledger?.append(entry)
    state = JobState.load(context.stateFile)
    // A job that did not end when asked to stays on cleanup's list.
    if index < state.submissions.count { state.submissions[index].finished = ended }
    try? state.save(context.stateFile)
    if let verdict { throw verdict }
  }

  /// Streams the job's output until every task has ended, then decides the verdict; `ended`
  /// is false when the job did not end within `cancel_wait_seconds` of a cancel.
  func follow(job: BatchJob, id: JobID, submittedAt: Date) -> (verdict: DriverFailure?, ended: Bool) {
    let tasks = job.taskIDs
    let isArray = job.isArray
    var followers: [Int: OutputFollower] = [:]
    var prefixers: [Int: LinePrefixer] = [:]
    for task in tasks {
      followers[task] = OutputFollower(path: JobFiles.output(in: job.directory, task: task, isArray: isArray))
      if isArray { prefixers[task] = LinePrefixer(task: task) }
    }
    var statuses: [Int: TaskStatus] = [:]
    var endedInScheduler: Set<Int> = []
    var schedulerUnknown = false
    var lastPoll = Date()
    var lastHeartbeat = Date()
    var lastOutput = Date()
    var pendingReason: String? = nil
    var startedAt: Date? = nil
    var unavailableSince: Date? = nil
    var cancelled = false
    var cancelDeadline = Date.distantFuture
    var ended = true
    let tick = settings.outputPollMilliseconds / 1000
    var lastByte: UInt8? = nil

    /// Passes on each file's new bytes one chunk at a time (memory stays at a chunk). While
    /// the job runs, a file gets at most 64 chunks per tick so that the other tasks, a cancel
    /// and the polls get their turn; the final drain reads every file to its end. Sets
    /// `behind` when a file had more than its share: the loop then reads on at once.
    var behind = false
    func drain(final: Bool) {
      behind = false
      for task in tasks {
        var chunks = 0
        while final || chunks < 64 {
          let data = followers[task]!.readNew()
          if data.isEmpty { break }
          if chunks == 63 { behind = true }
          chunks += 1
          if startedAt == nil { startedAt = Date() }
          lastOutput = Date()
          if isArray {
            let marked = prefixers[task]!.feed(data)
            if !marked.isEmpty { console.output(marked) }
          } else {
            console.output(data)
            lastByte = data.last
          }
        }
        if final, isArray {
          let rest = prefixers[task]!.finish()
          if !rest.isEmpty { console.output(rest) }
        }
      }
    }

    /// A task's status file is written by the job's own account, so the job could write
    /// `exit 0` itself and run on: it is read again until the scheduler says the task ended
    /// (the wrapper writes it last, just before it exits), and only then trusted.
    func readStatuses() {
      for task in tasks where statuses[task] == nil || !(endedInScheduler.contains(task) || schedulerUnknown) {
        let path = JobFiles.status(in: job.directory, task: task, isArray: isArray)
        if let text = try? String(contentsOfFile: path, encoding: .utf8), let status = WrapperScript.parseStatus(text) {
          // A new status: ask the scheduler for its word now rather than at the next poll.
          if statuses[task] == nil && !endedInScheduler.contains(task) { lastPoll = .distantPast }
          statuses[task] = status
          if startedAt == nil { startedAt = Date() }
        }
      }
    }

    /// Tasks not done for good: done means the scheduler says the task ended (or no longer
    /// knows the job at all). For an array, every task id must be accounted for, the ones in
    /// the still-pending rest (`123_[88-98%4]`) included, which the snapshot lists per task.
    func unfinished() -> [Int] {
      tasks.filter { !(endedInScheduler.contains($0) || schedulerUnknown) }
    }

    while true {
      drain(final: false)
      readStatuses()
      if unfinished().isEmpty { break }

      if cancellation.isSet && !cancelled {
        cancelled = true
        cancelDeadline = Date().addingTimeInterval(settings.cancelWaitSeconds)
        note(after: lastByte, "Cancelling \(scheduler.name) job \(id): the runner stopped this CI job (cancelled or timed out)")
        do { try scheduler.cancel(id) } catch { note(after: lastByte, "Could not cancel job \(id): \(error); ci-cleanup will try again") }
        lastPoll = .distantPast
      }
      if cancelled && Date() > cancelDeadline {
        note(after: lastByte, "Job \(id) did not end within \(Int(settings.cancelWaitSeconds)) s of the cancel; ci-cleanup will cancel it again")
        ended = false
        break
      }

      // Ask the scheduler only now and then while tasks run. A task that got SIGTERM (time
      // limit, scancel) is about to end, and one that wrote its status only waits for the
      // scheduler's word: look sooner.
      let terminated = statuses.values.contains { if case .terminated = $0 { return true } else { return false } }
      // Every unconfirmed task has written its status: only the scheduler's word is missing.
      let confirming = unfinished().allSatisfy { statuses[$0] != nil }
      let pollEvery = confirming ? 0.5 : cancelled || terminated ? 1.0 : (startedAt == nil ? min(settings.pollSeconds, 5) : settings.pollSeconds)
      if Date().timeIntervalSince(lastPoll) >= pollEvery {
        lastPoll = Date()
        do {
          let snapshot = try scheduler.snapshot(of: id)
          if unavailableSince != nil { note(after: lastByte, "\(scheduler.name) answers again") }
          unavailableSince = nil
          if snapshot.unknown && !schedulerUnknown {
            schedulerUnknown = true
            statuses = [:]  // read again: written before the end, they are final now
          }
          pendingReason = nil
          for (task, state) in snapshot.tasks {
            switch state {
            case .ended: if endedInScheduler.insert(task).inserted { statuses[task] = nil }
            case .pending(let reason): pendingReason = reason
            case .running: if startedAt == nil { startedAt = Date() }
            }
          }
          if let rest = snapshot.pendingRest { pendingReason = pendingReason ?? rest }
          if unfinished().isEmpty {
            readStatuses()
            if statuses.count < tasks.count {
              // The scheduler says done, but a status file may still be on its way over a
              // shared file system: give it a moment before trusting the scheduler alone.
              sleepSeconds(1)
              drain(final: false)
              readStatuses()
            }
          }
        } catch {
          if unavailableSince == nil {
            unavailableSince = Date()
            note(after: lastByte, "\(scheduler.name) is not answering (\(error)); the job keeps running, will keep asking")
          }
        }
      }

      if Date().timeIntervalSince(lastHeartbeat) >= settings.heartbeatSeconds {
        let waited = Self.duration(Date().timeIntervalSince(submittedAt))
        if startedAt == nil {
          let reason = scheduler.pendingReason(of: id) ?? pendingReason.flatMap { $0 == "None" ? nil : $0 } ?? "no reason given yet"
          note(after: lastByte, "Job \(id) is waiting in the queue (\(reason)), \(waited) so far")
          lastHeartbeat = Date()
        } else if Date().timeIntervalSince(lastOutput) >= max(settings.heartbeatSeconds * 10, 300) {
          note(after: lastByte, "Job \(id) is running (no output for \(Self.duration(Date().timeIntervalSince(lastOutput)))), \(waited) since submission")
          lastHeartbeat = Date()
        }
      }
      if !behind { sleepSeconds(tick) }
    }
    drain(final: true)

    // Tasks without a clean exit status: ask the scheduler how they ended.
    let unclear = tasks.filter { if case .exited? = statuses[$0] { return false } else { return true } }
    var ends = TaskEnds()
    if !unclear.isEmpty {
      ends = settledEnds(id: id, directory: job.directory, tasks: unclear)
    }
    var outcomes: [Int: TaskOutcome] = [:]
    for task in tasks {
      outcomes[task] = TaskOutcome.classify(status: statuses[task], end: ends[task])
    }
    let finished = Date()
    if isArray {
      printSummary(id: id, outcomes: outcomes)
    }
    let queued = (startedAt ?? finished).timeIntervalSince(submittedAt)
    let ran = startedAt.map { finished.timeIntervalSince($0) } ?? 0
    note(after: lastByte, "\(scheduler.name) job \(id) ended: queued about \(Self.duration(queued)), ran about \(Self.duration(ran))")
    if cancelled {
      return (.build(exitCode: 143, message: "\(scheduler.name) job \(id) was cancelled because the CI job was stopped"), ended)
    }
    return (JobVerdict.decide(jobID: id, outcomes: outcomes, isArray: isArray, scheduler: scheduler.name), ended)
  }

  /// The scheduler's end states, waiting out COMPLETING (a job killed at its time limit is
  /// "COMPLETING" for a few seconds before it is "TIMEOUT").
  func settledEnds(id: JobID, directory: String, tasks: [Int]) -> TaskEnds {
    var ends = TaskEnds()
    for attempt in 0..<30 {
      do {
        ends = try scheduler.finalStates(of: id, in: directory)
        let settling = tasks.contains { task in
          if case .other(let state)? = ends[task]?.kind {
            return ["COMPLETING", "RUNNING", "PENDING", "CONFIGURING", "SIGNALING", "STAGE_OUT"].contains(state)
          }
          return false
        }
        if !settling { return ends }
      } catch {
        if attempt == 0 { console.note("Asking \(scheduler.name) how job \(id) ended: \(error); retrying") }
      }
      sleepSeconds(1)
    }
    return ends
  }

  func printSummary(id: JobID, outcomes: [Int: TaskOutcome]) {
    let ordered = outcomes.sorted { $0.key < $1.key }
    let succeeded = ordered.filter { $0.value == .succeeded }.count
    var lines = ["Summary of \(scheduler.name) job \(id): \(ordered.count) tasks, \(succeeded) succeeded, \(ordered.count - succeeded) did not"]
    for (task, outcome) in ordered {
      lines.append("  task \(task): \(outcome.summary)")
    }
    console.note(lines.joined(separator: "\n"))
  }

  static func duration(_ seconds: TimeInterval) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total)s" }
    if total < 3600 { return "\(total / 60)m\(total % 60)s" }
    return "\(total / 3600)h\(total % 3600 / 60)m"
  }
}
