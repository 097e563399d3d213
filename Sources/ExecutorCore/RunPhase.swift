import ChildProcesses
public import CustomExecutorAPI
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import Scheduling
public import SbatchModel
import AtomicFiles

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
  public let clock: any DriverClock

  public init(
    context: JobContext, scheduler: any Scheduler, console: DriverConsole, cancellation: CancellationFlag,
    clock: any DriverClock = SystemClock()
  ) {
    self.context = context
    self.scheduler = scheduler
    self.console = console
    self.cancellation = cancellation
    self.clock = clock
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
    let path = JobFiles.stageScript(in: try nextStageDirectory(stage))
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
  public static func request(for context: JobContext) throws -> JobRequest { try requestAndAsked(for: context).request }

  /// The request, and what the admin's defaults and the user asked before the driver
  /// added its own (`StageClock.fit` says so when it lowers an asked --time).
  static func requestAndAsked(for context: JobContext) throws -> (request: JobRequest, asked: JobRequest) {
    let settings = context.settings
    let defaults = try JobRequest.parse(settings.defaultParameters)
    let user = try JobRequest.parse(context.environment.job("SCHEDULER_PARAMETERS") ?? "")
    let request = try settings.policy.request(defaults: defaults, user: user, timeoutSeconds: context.jobTimeoutSeconds)
    return (request, JobRequest(options: defaults.options + user.options))
  }

  /// GitLab's clock around `stage` from the job's state and variables, its notes printed.
  func stageClock(_ stage: RunStage, state: JobState, now: Date) -> StageClock? {
    let known = [context.trusted.startedAt, state.jobStartedAt.map { Date(timeIntervalSince1970: $0) }].compactMap { $0 }
    let jobStartedAt = min(known.min() ?? now, now)
    // The state file is the account's to rewrite: a script start outside [job start, now]
    // (1e300 made the budget's minutes overflow Int) is taken as the nearest of the two.
    let scriptStartedAt = state.scriptStartedAt.map { Date(timeIntervalSince1970: $0) } ?? now
    let (clock, notes) = StageClock.resolve(
      stage: stage, environment: context.environment, timeoutSeconds: context.jobTimeoutSeconds,
      jobStartedAt: jobStartedAt, scriptStartedAt: max(jobStartedAt, min(scriptStartedAt, now)),
      now: now, drainSeconds: settings.drainMarginSeconds)
    for line in notes { console.note(line) }
    return clock
  }

  func nextStageDirectory(_ stage: RunStage) throws -> String {
    try PrivateFiles.makeDirectory(context.jobDirectory)
    var attempt = 1
    let layout = context.layout
    while FileManager.default.fileExists(atPath: layout.stageDirectory(stage.description, attempt: attempt)) { attempt += 1 }
    let directory = layout.stageDirectory(stage.description, attempt: attempt)
    try PrivateFiles.makeDirectory(directory)
    return directory
  }

  func runOnScheduler(script: Data, stage: RunStage) throws {
    var request: JobRequest
    let asked: JobRequest
    do {
      (request, asked) = try RunPhase.requestAndAsked(for: context)
    } catch let error as JobRequest.ParseError {
      throw DriverFailure.build(exitCode: 1, message: error.message)
    }
    var state = JobState.load(context.stateFile)
    let now = clock.now
    if stage.isUserScript && state.scriptStartedAt == nil { state.scriptStartedAt = now.timeIntervalSince1970 }
    var budget: StageClock.Budget?
    if let stageClock = stageClock(stage, state: state, now: now) {
      let fitted = try stageClock.fit(request, asked: asked, at: now)
      if let note = fitted.note { console.note(note) }
      (request, budget) = (fitted.request, fitted.budget)
    }
    let directory = try nextStageDirectory(stage)
    let stagedScript = JobFiles.stageScript(in: directory)
    let wrapper = JobFiles.wrapper(in: directory)
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
    state.submissions.append(.init(stage: stage.description, name: job.name, id: nil, finished: false))
    let index = state.submissions.count - 1
    try state.save(context.stateFile)

    let submittedAt = clock.now
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
    var sections = JobSections(id: id, scheduler: scheduler.name)
    let reproducer = JobSections.Reproducer(
      command: scheduler.submissionCommand(for: job), stagedScript: stagedScript, wrapper: wrapper,
      workingDirectory: job.workingDirectory)
    for line in sections.submitted(
      at: submittedAt, line: "Submitted \(scheduler.name) job \(id) (\(job.name)) for \(stage): \(options)", reproducer: reproducer)
    {
      console.note(line)
    }
    var entry = LedgerRecord(
      event: LedgerRecord.submitted, ciJobID: context.jobID, ciJobName: context.environment.job("CI_JOB_NAME") ?? "",
      ciJobStage: context.environment.job("CI_JOB_STAGE") ?? "", runnerStage: stage.description, scheduler: scheduler.name,
      schedulerJobID: id.raw, host: ProcessInfo.processInfo.hostName, time: submittedAt.timeIntervalSince1970, result: nil)
    ledger?.append(entry)

    let (verdict, ended) = follow(job: job, id: id, stage: stage, submittedAt: submittedAt, sections: sections, budget: budget)
    // A job that failed by the scheduler's hand (node failure, lost job) can still be
    // listed as running, and cleanup skips finished submissions: cancel it here. A build
    // failure wrote its status file, so that job has ended and needs no extra RPC.
    if case .some(.system) = verdict { try? scheduler.cancel(id) }
    entry.event = LedgerRecord.ended
    entry.result = verdict == nil ? "succeeded" : "failed"
    entry.time = clock.now.timeIntervalSince1970
    ledger?.append(entry)
    state = JobState.load(context.stateFile)
    // A job that did not end when asked to stays on cleanup's list.
    if index < state.submissions.count { state.submissions[index].finished = ended }
    try? state.save(context.stateFile)
    if let verdict { throw verdict }
  }

  /// Streams the job's output until every task has ended, then returns the verdict; `ended`
  /// is false when the job did not end within `cancel_wait_seconds` of a cancel. The
  /// decisions are `JobWatch`'s; this loop only does what it asks, and writes the log's
  /// sections (`JobSections`) as the watch's state and actions come.
  func follow(
    job: BatchJob, id: JobID, stage: RunStage, submittedAt: Date, sections: JobSections, budget: StageClock.Budget?
  ) -> (verdict: DriverFailure?, ended: Bool) {
    var sections = sections
    var watch = JobWatch(
      id: id, schedulerName: scheduler.name, tasks: job.taskIDs, isArray: job.isArray, submittedAt: submittedAt,
      timing: .init(
        pollSeconds: settings.pollSeconds, heartbeatSeconds: settings.heartbeatSeconds,
        cancelWaitSeconds: settings.cancelWaitSeconds),
      partialExitCode: settings.partialArrayExitCode == 0 ? nil : settings.partialArrayExitCode, budget: budget)
    let ciJobName = context.environment.job("CI_JOB_NAME") ?? job.name
    var output = JobOutput(job: job, console: console, outputLimit: settings.outputLimitBytes) {
      JobLayout.completeLog(ciJobName: ciJobName, task: $0, isArray: job.isArray, afterScript: stage == .afterScript)
    }
    var seen = JobWatch.Observation(now: clock.now)
    var pace = LoopPace(fast: settings.outputPollMilliseconds / 1000, slow: settings.idlePollMilliseconds / 1000, start: clock.now)
    var statusesSeen = 0
    func notes(_ lines: [String]) { for line in lines { note(after: output.lastByte, line) } }
    /// The tasks the watch calls over, each in its section (all of them once the job is).
    func passTasks(all: Bool) {
      guard job.isArray else { return }
      for task in job.taskIDs where !output.passed.contains(task) && (all || watch.isOver(task)) {
        output.passTask(task, section: sections.task(task, status: watch.statuses[task], at: clock.now))
      }
    }
    while true {
      // Output is only looked at before the step and passed on after it, so "queued" is
      // closed before a plain job's first byte.
      seen.sawOutput = output.hasNewOutput()
      seen.statuses = readStatuses(of: watch.tasksToRead, job: job)
      seen.cancelRequested = cancellation.isSet
      seen.now = clock.now
      let wasStarted = watch.startedAt != nil
      var active = seen.sawOutput || seen.statuses.count != statusesSeen || seen.cancelRequested
      statusesSeen = seen.statuses.count
      let actions = watch.step(seen)
      active = active || (!wasStarted && watch.startedAt != nil)
      seen = JobWatch.Observation(now: clock.now)
      if sections.queuedOpen, let started = watch.startedAt {
        notes(sections.started(at: started, queued: started.timeIntervalSince(submittedAt)))
      }
      // Bytes that came after the look wait for the next step: "queued" closes first.
      let drained = watch.startedAt == nil ? (sawOutput: false, behind: false) : output.drain()
      for action in actions {
        switch action {
        case .note(let text): note(after: output.lastByte, text)
        case .poll(let fresh): seen.snapshot = schedulerCall { try scheduler.snapshot(of: id, fresh: fresh) }
        case .cancel:
          if case .failure(let error) = schedulerCall({ try scheduler.cancel(id) }) { seen.cancelError = error }
        case .lowerTimeLimit(let task, let minutes):
          if case .failure(let error) = schedulerCall({ try scheduler.lowerTimeLimit(of: id, task: task, toMinutes: minutes) }) {
            seen.limitError = error
          } else if let budget {
            note(
              after: output.lastByte,
              "Lowered \(scheduler.name) job \(id)\(task.map { " task \($0)" } ?? "")'s time limit to \(minutes) min, to end before GitLab stops this CI job (\(budget.source))")
          }
        case .askPendingReason: seen.pendingReason = scheduler.pendingReason(of: id)
        case .drainToEnd:
          let now = clock.now
          notes(sections.started(at: watch.startedAt ?? now, queued: (watch.startedAt ?? now).timeIntervalSince(submittedAt)))
          output.drainToEnd()
          passTasks(all: true)
        case .askEnds: seen.ends = schedulerCall { try scheduler.finalStates(of: id, in: job.directory) }
        case .summarize(let headline, let outcomes):
          let now = clock.now
          let usage = scheduler.usage(of: id)
          let rows = outcomes.map { JobSections.Row(task: $0.key, outcome: $0.value, usage: usage[$0.key]) }
          let memory = job.request.value(of: "mem") ?? job.request.value(of: "mem-per-cpu").map { "\($0) per CPU" }
          notes(sections.summary(headline: headline, rows: rows, requestedMemory: memory, at: now))
          writeReports(job: job, id: id, stage: stage, outcomes: outcomes, usage: usage)
        case .finish(let verdict, let ended): return (verdict, ended)
        }
      }
      passTasks(all: false)
      let pause = pace.next(active: active || drained.sawOutput, now: clock.now)
      if !drained.behind { clock.sleep(pause) }
    }
  }

  /// What the job's `artifacts:` pick up under the CI project directory: the JUnit report
  /// (`artifacts:reports:junit`), every task's complete output (`artifacts:paths`) and
  /// the annotations (`artifacts:reports:annotations`). CI_PROJECT_DIR is a job variable,
  /// so it is used only inside the job's builds directory (where the runner puts it), and
  /// written through no symlink the checkout could hold (`AtomicFiles.write(_:to:below:)`);
  /// a file that cannot be written is one line, never the job's failure. An after_script on
  /// the scheduler keeps its own complete log and leaves the script's JUnit report as it is.
  func writeReports(job: BatchJob, id: JobID, stage: RunStage, outcomes: [Int: TaskOutcome], usage: [Int: TaskUsage]) {
    guard let project = context.environment.job("CI_PROJECT_DIR"), project.hasPrefix(context.buildsDirectory + "/"),
      !project.split(separator: "/").contains("..")
    else { return }
    let ciJobName = context.environment.job("CI_JOB_NAME") ?? job.name
    let below = context.buildsDirectory
    if stage != .afterScript {
      let cases = outcomes.map { task, outcome in
        let tail = outcome == .succeeded
          ? "" : JUnitReport.tail(of: OutputFollower.tail(of: JobFiles.output(in: job.directory, task: task, isArray: job.isArray), bytes: JUnitReport.tailBytes))
        return JUnitReport.Case(task: task, outcome: outcome, seconds: JUnitReport.seconds(elapsed: usage[task]?.elapsed), tail: tail)
      }
      let xml = JUnitReport.render(jobName: ciJobName, id: id, scheduler: scheduler.name, isArray: job.isArray, cases: cases)
      do {
        try AtomicFiles.write(Data(xml.utf8), to: "\(project)/\(JobLayout.junitReport)", below: below)
      } catch {
        console.note("Could not write the JUnit report: \(error)")
      }
    }
    for task in job.taskIDs {
      let output = JobFiles.output(in: job.directory, task: task, isArray: job.isArray)
      let log = "\(project)/\(JobLayout.completeLog(ciJobName: ciJobName, task: task, isArray: job.isArray, afterScript: stage == .afterScript))"
      do {
        // A task that never started has no output file: its log is empty.
        if FileManager.default.fileExists(atPath: output) {
          try AtomicFiles.copy(output, to: log, below: below)
        } else {
          try AtomicFiles.write(Data(), to: log, below: below)
        }
      } catch {
        console.note("Could not keep the complete log of \(job.isArray ? "task \(task)" : "the job"): \(error)")
      }
    }
    // Every Slurm job of this CI job so far (a scheduler after_script is a second one).
    let ids = JobState.load(context.stateFile).submissions.compactMap { $0.id?.raw }
    // The published report: publish wrote public/, which GitLab Pages serves.
    let published = FileManager.default.fileExists(atPath: "\(project)/public/index.html")
    let links = Annotations.links(
      scheduler: scheduler.name, jobIDs: ids.isEmpty ? [id.raw] : ids, jobURL: settings.slurmJobURL,
      pagesURL: published ? context.environment.job("CI_PAGES_URL") : nil)
    do {
      try AtomicFiles.write(Data(Annotations.render(links).utf8), to: "\(project)/\(JobLayout.annotations)", below: below)
    } catch {
      console.note("Could not write the annotations: \(error)")
    }
  }

  /// A scheduler call's answer for the watch: `SchedulerError`s as they are, anything
  /// else as one.
  func schedulerCall<T>(_ body: () throws -> T) -> Result<T, SchedulerError> {
    do { return .success(try body()) } catch let error as SchedulerError { return .failure(error) } catch {
      return .failure(SchedulerError(.commandFailed, ErrorText.oneLine(error)))
    }
  }

  func readStatuses(of tasks: [Int], job: BatchJob) -> [Int: TaskStatus] {
    var statuses: [Int: TaskStatus] = [:]
    for task in tasks {
      let path = JobFiles.status(in: job.directory, task: task, isArray: job.isArray)
      if let data = AtomicFiles.readRegularFile(path), let status = WrapperScript.parseStatus(String(decoding: data, as: UTF8.self)) {
        statuses[task] = status
      }
    }
    return statuses
  }
}
