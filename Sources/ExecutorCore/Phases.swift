public import CustomExecutorAPI
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif
public import Scheduling
public import SbatchModel

/// The driver's name and version, as config_exec reports them.
public enum DriverInfo {
  public static let name = "ci-slurm"
  public static let version = "0.1.0"
}

/// config_exec: tells the runner where builds and caches go. Prints JSON only.
public struct ConfigPhase: Sendable {
  public let context: JobContext
  public let hostname: String

  public init(context: JobContext, hostname: String) {
    self.context = context
    self.hostname = hostname
  }

  public func output() -> ConfigExecOutput {
    var jobEnv = [DriverVariable.jobDirectory: context.jobDirectory]
    // ci-local (the tests' runner) reads the pipeline's ledger from where the driver says.
    if let ledger = JobsLedger(context: context) { jobEnv[DriverVariable.jobsLedger] = ledger.path }
    return ConfigExecOutput(
      buildsDir: context.buildsDirectory,
      cacheDir: context.cacheDirectory,
      // The builds dir is already unique per CI job, so the runner's own sharing layout
      // (runner token / concurrent id) would only lengthen paths.
      buildsDirIsShared: false,
      hostname: hostname,
      driver: .init(name: DriverInfo.name, version: DriverInfo.version),
      jobEnv: jobEnv,
      shell: "bash")
  }
}

/// prepare_exec: checks the job's scheduler options and that the scheduler answers,
/// creates the job's private directories, and notes when the CI job started.
public struct PreparePhase: Sendable {
  public let context: JobContext
  public let scheduler: any Scheduler
  public let console: DriverConsole
  public let clock: any DriverClock

  public init(context: JobContext, scheduler: any Scheduler, console: DriverConsole, clock: any DriverClock = SystemClock()) {
    self.context = context
    self.scheduler = scheduler
    self.console = console
    self.clock = clock
  }

  public func run() throws {
    let request: JobRequest
    do {
      request = try RunPhase.request(for: context)
    } catch let error as JobRequest.ParseError {
      // The user's own mistake: a build failure, so the runner does not retry it 3 times.
      throw DriverFailure.build(exitCode: 1, message: error.message)
    }
    do {
      try scheduler.checkAvailable()
    } catch let error as SchedulerError {
      throw DriverFailure.system(error.message)
    }
    do {
      try PreparePhase.makeDirectories(context)
    } catch let failure as DriverFailure {
      throw failure
    } catch {
      throw DriverFailure.system("cannot create the job's directories under \(context.accountRoot): \(ErrorText.oneLine(error))")
    }
    // GitLab's clock started before this phase: ci-run measures the time left from here
    // (or from the payload's writing, when earlier).
    var state = JobState.load(context.stateFile)
    if state.jobStartedAt == nil {
      state.jobStartedAt = clock.now.timeIntervalSince1970
      try? state.save(context.stateFile)
    }
    LogRetention.sweep(context.logsDirectory, olderThanDays: context.settings.keepLogsDays)
    // Jobs ledgers are read by a pipeline's later jobs: kept a week at least, whatever
    // keep_logs_days says, and swept like the logs after that.
    LogRetention.sweep("\(context.accountRoot)/pipelines", olderThanDays: max(context.settings.keepLogsDays, 7))
    let options = request.arguments.isEmpty ? "(none)" : request.arguments.joined(separator: " ")
    let who = context.account.map { " as \($0.name)" } ?? ""
    console.note("ci-slurm \(DriverInfo.version): \(scheduler.name) backend\(who); job options: \(options)")
  }

  /// The job's private directories. With run_as the account's root was made by the
  /// privileged part (`AccountRoot`) and this runs as the account.
  static func makeDirectories(_ context: JobContext) throws {
    let root = context.accountRoot
    for directory in [root, "\(root)/jobs", "\(root)/builds", context.jobDirectory, context.buildsDirectory, context.cacheDirectory] {
      try PrivateFiles.makeDirectory(directory)
    }
  }
}

/// cleanup_exec: cancels whatever the job left in the scheduler and removes its staged
/// scripts. Quick, idempotent, and never fails the CI job.
public struct CleanupPhase: Sendable {
  public let context: JobContext
  public let scheduler: any Scheduler
  public let console: DriverConsole

  public init(context: JobContext, scheduler: any Scheduler, console: DriverConsole) {
    self.context = context
    self.scheduler = scheduler
    self.console = console
  }

  public func run() {
    let state = JobState.load(context.stateFile)
    // Submissions whose id is unknown (ci-run died in sbatch) are found by name below.
    for submission in state.submissions where !submission.finished {
      guard let id = submission.id else { continue }
      do {
        try scheduler.cancel(id)
        console.note("Cancelled \(scheduler.name) job \(id) left by stage \(submission.stage)")
      } catch {
        console.note("Could not cancel the job of stage \(submission.stage): \(error)")
      }
    }
    // The last word, whatever ci-run recorded (a lost sbatch answer, a failed scancel, a
    // job that wrote its own status): cancel by the CI job's name, which is idempotent,
    // then ask once whether anything is left.
    for name in Set(state.submissions.map(\.name)).sorted() {
      do {
        try scheduler.cancel(named: name)
        let left = try scheduler.liveJobs(named: name)
        if !left.isEmpty {
          console.note("\(scheduler.name) still lists job(s) \(left.map(\.raw).joined(separator: ", ")) named \(name) after the cancel")
        }
      } catch {
        console.note("Could not cancel the jobs named \(name): \(error)")
      }
    }
    let manager = FileManager.default
    if context.settings.keepLogsDays > 0 {
      LogRetention.keep(jobDirectory: context.jobDirectory, in: "\(context.logsDirectory)/\(context.jobID)")
    }
    if !context.settings.keepJobDirectories {
      try? manager.removeItem(atPath: context.jobDirectory)
    }
    if !context.settings.keepBuilds {
      try? manager.removeItem(atPath: context.buildsDirectory)
    }
  }
}

/// Job output kept for `keep_logs_days`: copied out of the job directory at cleanup,
/// swept at prepare.
enum LogRetention {
  static func keep(jobDirectory: String, in destination: String) {
    let manager = FileManager.default
    guard let stages = try? manager.contentsOfDirectory(atPath: jobDirectory) else { return }
    for stage in stages {
      let files = (try? manager.contentsOfDirectory(atPath: "\(jobDirectory)/\(stage)")) ?? []
      for file in files where file.hasPrefix("output") && file.hasSuffix(".log") {
        try? PrivateFiles.makeDirectory(destination)
        try? manager.copyItem(atPath: "\(jobDirectory)/\(stage)/\(file)", toPath: "\(destination)/\(stage)-\(file)")
      }
    }
  }

  static func sweep(_ logs: String, olderThanDays days: Double) {
    let manager = FileManager.default
    guard let jobs = try? manager.contentsOfDirectory(atPath: logs) else { return }
    let cutoff = Date().addingTimeInterval(-days * 86400)
    for job in jobs {
      let path = "\(logs)/\(job)"
      if let modified = (try? manager.attributesOfItem(atPath: path))?[.modificationDate] as? Date, modified < cutoff || days == 0 {
        try? manager.removeItem(atPath: path)
      }
    }
  }
}
