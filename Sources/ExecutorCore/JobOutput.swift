public import Scheduling
import SbatchModel
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A submitted job's output files on their way to the CI log. A plain job's bytes are
/// passed on as they come; an array task's output is passed on whole when the task is over,
/// inside its own log section and each line marked with its task (docs/executor.md says
/// why: GitLab's sections cannot interleave). Memory stays at one chunk per read.
///
/// Past the runner's `output_limit` (`LogBudget`) the stream stops at a line's end, one
/// note names the complete logs (`completeLog`, the artifact's path of each task), and each
/// task still to come shows only its tail at its end.
public struct JobOutput {
  let tasks: [Int]
  let isArray: Bool
  let console: DriverConsole
  /// A task's complete log, as the artifact's path the user finds it under.
  let completeLog: (Int) -> String
  public private(set) var budget: LogBudget
  var followers: [Int: OutputFollower] = [:]
  /// An array task's file size when last looked at: growth is output the watch hears of.
  var seenSizes: [Int: Int] = [:]
  /// The array tasks whose output has been passed on.
  public private(set) var passed: Set<Int> = []
  /// The last byte passed on (plain jobs), so a driver note after a last line without a
  /// newline starts on a line of its own.
  public private(set) var lastByte: UInt8? = nil

  /// While the job runs a file gets at most this many chunks per read, so that the other
  /// tasks, a cancel and the polls get their turn.
  static let chunksPerTurn = 64

  public init(job: BatchJob, console: DriverConsole, outputLimit: Int, completeLog: @escaping (Int) -> String) {
    tasks = job.taskIDs
    isArray = job.isArray
    self.console = console
    self.completeLog = completeLog
    budget = LogBudget(limit: outputLimit)
    for task in tasks {
      followers[task] = OutputFollower(path: JobFiles.output(in: job.directory, task: task, isArray: isArray))
    }
  }

  /// Whether any task wrote since the last look (file sizes only: nothing is read).
  public mutating func hasNewOutput() -> Bool {
    var grew = false
    for task in tasks where !passed.contains(task) {
      let follower = followers[task]!
      let size = follower.size()
      let seen = isArray ? seenSizes[task, default: 0] : follower.bytesRead
      if size > seen {
        grew = true
        if isArray { seenSizes[task] = size }
      }
    }
    return grew
  }

  /// Passes on a plain job's new bytes (an array's wait for their tasks' ends). `behind`
  /// when the file had more than its turn: the caller reads on at once instead of sleeping.
  public mutating func drain() -> (sawOutput: Bool, behind: Bool) {
    guard !isArray, let follower = followers[0] else { return (false, false) }
    guard !budget.exceeded else { return (follower.skipToEnd(), false) }
    var saw = false
    for chunk in 0..<JobOutput.chunksPerTurn {
      let data = follower.readNew()
      if data.isEmpty { break }
      saw = true
      if !stream(data, follower: follower) { return (true, false) }
      if chunk == JobOutput.chunksPerTurn - 1 { return (true, true) }
    }
    return (saw, false)
  }

  /// Passes on what the budget admits of a plain job's `data`; false when it ran out there
  /// (then the stream is cut at the admitted part's last newline, the note follows, and the
  /// rest of the file is skipped: the tail comes at the end).
  mutating func stream(_ data: Data, follower: OutputFollower) -> Bool {
    let admitted = budget.admit(data.count)
    guard admitted < data.count else {
      console.output(data)
      lastByte = data.last
      return true
    }
    cut(data, at: admitted)
    follower.skipToEnd()
    return false
  }

  /// The budget ran out inside `data`: what it admitted, up to its last newline (every line
  /// passed on is whole, an array's keeps its task's mark), then the note.
  mutating func cut(_ data: Data, at admitted: Int) {
    let kept = data.prefix(admitted)
    if let newline = kept.lastIndex(of: UInt8(ascii: "\n")) {
      console.output(kept[...newline])
      budget.count(newline + 1 - kept.startIndex)
      lastByte = UInt8(ascii: "\n")
    }
    passedLimit()
  }

  /// The one note, when the budget ran out; on a line of its own.
  func passedLimit() {
    let what = isArray ? "task-N.log for array task N" : "job.log"
    let directory = completeLog(tasks[0]).split(separator: "/").dropLast().joined(separator: "/")
    let text =
      "The log reached the runner's output_limit (\(LogBudget.describe(budget.limit))): the complete output is in this job's artifacts, \(directory)/ (\(what)); from here on each task shows only its last \(JUnitReport.tailLines) lines, at its end"
    console.note(lastByte.map { $0 == UInt8(ascii: "\n") } == false ? "\n" + text : text)
  }

  /// A task's tail after the limit: a header line, then its last lines (each marked with
  /// its task in an array), or one line saying the tail does not fit either.
  mutating func passTail(_ task: Int, follower: OutputFollower) {
    let tail = JUnitReport.tail(of: OutputFollower.tail(of: follower.path, bytes: JUnitReport.tailBytes))
    let body: Data
    if isArray {
      var prefixer = LinePrefixer(task: task)
      body = tail.isEmpty ? Data() : prefixer.feed(Data((tail + "\n").utf8))
    } else {
      body = tail.isEmpty ? Data() : Data((tail + "\n").utf8)
    }
    let header = "Last \(JUnitReport.tailLines) lines of \(isArray ? "task \(task)" : "the job")'s output (complete: \(completeLog(task)))"
    let text = budget.tailFits(body.count + header.utf8.count)
      ? header : "The tail of \(isArray ? "task \(task)" : "the job") does not fit under output_limit either: see \(completeLog(task))"
    let line = Data((text + "\n").utf8)
    console.output(line)
    budget.count(line.count)
    guard text == header, !body.isEmpty else { return }
    console.output(body)
    budget.count(body.count)
    lastByte = body.last
  }

  /// The job is over: a plain job's file to the end it has now (a job that ignored its
  /// cancel and still writes cannot keep this going). Array tasks go by `passTask`.
  public mutating func drainToEnd() {
    guard !isArray, let follower = followers[0] else { return }
    let end = follower.size()
    while !budget.exceeded && follower.bytesRead < end {
      let data = follower.readNew(atMost: end - follower.bytesRead)
      if data.isEmpty || !stream(data, follower: follower) { break }
    }
    if budget.exceeded { passTail(0, follower: follower) }
  }

  /// An array task is over: its output to the end it has now, between `section`'s markers
  /// (each on a line of its own), every line marked `[task N] `, a last line without a
  /// newline ended with one. Once per task.
  public mutating func passTask(_ task: Int, section: (start: String, end: String)) {
    guard isArray, let follower = followers[task], passed.insert(task).inserted else { return }
    mark(section.start)
    var prefixer = LinePrefixer(task: task)
    let end = follower.size()
    while !budget.exceeded && follower.bytesRead < end {
      let data = follower.readNew(atMost: end - follower.bytesRead)
      if data.isEmpty { break }
      let marked = prefixer.feed(data)
      let admitted = budget.admit(marked.count)
      if admitted < marked.count {
        cut(marked, at: admitted)
      } else if !marked.isEmpty {
        console.output(marked)
      }
    }
    if budget.exceeded {
      passTail(task, follower: follower)
    } else {
      let rest = prefixer.finish()
      budget.count(rest.count)
      if !rest.isEmpty { console.output(rest) }
    }
    mark(section.end)
  }

  /// A section marker, on a line of its own.
  mutating func mark(_ marker: String) {
    let line = Data((marker + "\n").utf8)
    budget.count(line.count)
    console.output(line)
  }
}
