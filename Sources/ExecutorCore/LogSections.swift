#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling
import SbatchModel

/// GitLab's collapsible log sections, byte for byte as gitlab-runner writes its own
/// (helpers/trace sections: `section_start:<unix time>:<name>\r` then ANSI erase-line):
/// `\e[0Ksection_start:1700000000:slurm_task_3[collapsed=true]\r\e[0KSlurm: task 3 ...`
/// and `\e[0Ksection_end:1700000000:slurm_task_3\r\e[0K`. GitLab's page folds the lines
/// between the two under the title; a `[collapsed=true]` section starts folded.
public enum LogSection {
  /// The start marker and the title, one line without its newline. `name` must be what
  /// GitLab accepts (letters, digits, `_`, `.`, `-`): `sectionName` makes one.
  public static func start(_ name: String, title: String, at time: Date, collapsed: Bool) -> String {
    let options = collapsed ? "[collapsed=true]" : ""
    return "\u{1b}[0Ksection_start:\(unixTime(time)):\(name)\(options)\r\u{1b}[0K\(title)"
  }

  public static func end(_ name: String, at time: Date) -> String {
    "\u{1b}[0Ksection_end:\(unixTime(time)):\(name)\r\u{1b}[0K"
  }

  /// A section name GitLab's parser takes: anything else becomes `_`.
  public static func sectionName(_ text: String) -> String {
    String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) ? $0 : "_" })
  }

  static func unixTime(_ time: Date) -> Int { Int(time.timeIntervalSince1970.rounded(.down)) }
}

/// One Slurm job's sections in the CI log, as driver lines: the reproducer and "queued"
/// at submission, one section per array task when it is over, the summary at the end.
/// Pure (times are passed in), so every line is tested without a scheduler
/// (Tests/ExecutorCoreTests/LogSectionsTests.swift); `RunPhase` writes what it returns as
/// the watch's actions come.
public struct JobSections: Sendable {
  public let id: JobID
  public let scheduler: String
  /// The "queued" section is open: it ends when the first task starts (or the job ends).
  public private(set) var queuedOpen = false
  let prefix: String

  public init(id: JobID, scheduler: String) {
    self.id = id
    self.scheduler = scheduler
    prefix = LogSection.sectionName("\(scheduler.lowercased())_\(id.raw)")
  }

  /// What the user needs to run the job again by hand. Only what the driver passed to the
  /// scheduler (its options and paths): the job's environment is the driver's sanitised one
  /// and CI variables reach the job only inside the staged script, whose contents are never
  /// printed.
  public struct Reproducer: Equatable, Sendable {
    /// The submission's argv as run (nil: the scheduler has no command line).
    public var command: [String]?
    public var stagedScript: String
    public var wrapper: String
    public var workingDirectory: String

    public init(command: [String]?, stagedScript: String, wrapper: String, workingDirectory: String) {
      self.command = command
      self.stagedScript = stagedScript
      self.wrapper = wrapper
      self.workingDirectory = workingDirectory
    }
  }

  /// The reproducer (collapsed), then the open "queued" section with the submission line;
  /// the watch's waiting lines fall inside it.
  public mutating func submitted(at time: Date, line: String, reproducer: Reproducer) -> [String] {
    var lines = [LogSection.start("\(prefix)_reproduce", title: "\(scheduler): reproduce job \(id) by hand", at: time, collapsed: true)]
    if let command = reproducer.command {
      lines.append("Submitted with: \(command.map(ShellWords.quote).joined(separator: " "))")
      lines.append("Resubmit on the cluster: cd \(ShellWords.quote(reproducer.workingDirectory)) && \(command.map(ShellWords.quote).joined(separator: " "))")
    }
    lines.append("Batch script: \(reproducer.wrapper)")
    lines.append("CI script it runs: \(reproducer.stagedScript) (holds the job's CI variables; kept only with keep_job_dirs)")
    lines.append(LogSection.end("\(prefix)_reproduce", at: time))
    lines.append(LogSection.start("\(prefix)_queued", title: "\(scheduler): queued", at: time, collapsed: false))
    lines.append(line)
    queuedOpen = true
    return lines
  }

  /// The first task started (or the job is over without starting): the queue time, and the
  /// end of "queued".
  public mutating func started(at time: Date, queued seconds: TimeInterval) -> [String] {
    guard queuedOpen else { return [] }
    queuedOpen = false
    return ["Job \(id) waited \(JobWatch.duration(seconds)) in the queue", LogSection.end("\(prefix)_queued", at: time)]
  }

  /// An array task's section around its whole output: folded when it exited 0, open
  /// otherwise (failed, killed, no status), so a failure is what the page shows.
  public func task(_ task: Int, status: TaskStatus?, at time: Date) -> (start: String, end: String) {
    let name = "\(prefix)_task_\(task)"
    let how: String
    switch status {
    case .exited(let code)?: how = "exit \(code)"
    case .terminated(let code)?: how = "terminated (\(code))"
    case nil: how = "no exit status"
    }
    let succeeded = status == .exited(0)
    return (LogSection.start(name, title: "\(scheduler): task \(task) (\(how))", at: time, collapsed: succeeded),
            LogSection.end(name, at: time))
  }

  /// One row of the summary: how a task ended and what it used.
  public struct Row: Equatable, Sendable {
    public var task: Int
    public var outcome: TaskOutcome
    public var usage: TaskUsage?
    public init(task: Int, outcome: TaskOutcome, usage: TaskUsage?) {
      self.task = task
      self.outcome = outcome
      self.usage = usage
    }
  }

  /// The closing section: open when any task did not succeed. `headline` is the watch's
  /// count line; `requestedMemory` the job's `--mem` (or `--mem-per-cpu`) as asked.
  public func summary(headline: String, rows: [Row], requestedMemory: String?, at time: Date) -> [String] {
    let name = "\(prefix)_summary"
    let allSucceeded = rows.allSatisfy { $0.outcome == .succeeded }
    var lines = [LogSection.start(name, title: "\(scheduler): summary", at: time, collapsed: allSucceeded), headline]
    let memory = requestedMemory.map { " of \($0) requested" } ?? ""
    for row in rows.sorted(by: { $0.task < $1.task }) {
      let state = row.outcome == .succeeded ? "COMPLETED" : JobSections.state(of: row.outcome)
      let exit = row.outcome.buildExitCode.map(String.init) ?? (row.outcome == .succeeded ? "0" : "-")
      let usage = row.usage
      lines.append(
        "  task \(row.task): \(state), exit \(exit), elapsed \(usage?.elapsed ?? "-"), MaxRSS \(usage?.maxRSS ?? "-")\(memory), node \(usage?.node ?? "-")")
    }
    lines.append(LogSection.end(name, at: time))
    return lines
  }

  static func state(of outcome: TaskOutcome) -> String {
    switch outcome {
    case .succeeded: return "COMPLETED"
    case .failed: return "FAILED"
    case .timedOut: return "TIMEOUT"
    case .outOfMemory: return "OUT_OF_MEMORY"
    case .cancelledOutside: return "CANCELLED"
    case .infrastructure(let why): return "NOT FINISHED (\(why))"
    }
  }
}
