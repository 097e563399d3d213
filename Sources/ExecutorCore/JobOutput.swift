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
public struct JobOutput {
  let tasks: [Int]
  let isArray: Bool
  let console: DriverConsole
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

  public init(job: BatchJob, console: DriverConsole) {
    tasks = job.taskIDs
    isArray = job.isArray
    self.console = console
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
    var saw = false
    for chunk in 0..<JobOutput.chunksPerTurn {
      let data = follower.readNew()
      if data.isEmpty { break }
      saw = true
      console.output(data)
      lastByte = data.last
      if chunk == JobOutput.chunksPerTurn - 1 { return (true, true) }
    }
    return (saw, false)
  }

  /// The job is over: a plain job's file to the end it has now (a job that ignored its
  /// cancel and still writes cannot keep this going). Array tasks go by `passTask`.
  public mutating func drainToEnd() {
    guard !isArray, let follower = followers[0] else { return }
    let end = follower.size()
    while follower.bytesRead < end {
      let data = follower.readNew(atMost: end - follower.bytesRead)
      if data.isEmpty { break }
      console.output(data)
      lastByte = data.last
    }
  }

  /// An array task is over: its output to the end it has now, between `section`'s markers
  /// (each on a line of its own), every line marked `[task N] `, a last line without a
  /// newline ended with one. Once per task.
  public mutating func passTask(_ task: Int, section: (start: String, end: String)) {
    guard isArray, let follower = followers[task], passed.insert(task).inserted else { return }
    console.output(Data((section.start + "\n").utf8))
    var prefixer = LinePrefixer(task: task)
    let end = follower.size()
    while follower.bytesRead < end {
      let data = follower.readNew(atMost: end - follower.bytesRead)
      if data.isEmpty { break }
      let marked = prefixer.feed(data)
      if !marked.isEmpty { console.output(marked) }
    }
    let rest = prefixer.finish()
    if !rest.isEmpty { console.output(rest) }
    console.output(Data((section.end + "\n").utf8))
  }
}
