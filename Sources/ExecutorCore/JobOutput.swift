public import Scheduling
import SbatchModel
#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A submitted job's output files on their way to the CI log: each task's new bytes in
/// order, an array's lines marked with their task. Memory stays at one chunk per read.
public struct JobOutput {
  let tasks: [Int]
  let isArray: Bool
  let console: DriverConsole
  var followers: [Int: OutputFollower] = [:]
  var prefixers: [Int: LinePrefixer] = [:]
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
      if isArray { prefixers[task] = LinePrefixer(task: task) }
    }
  }

  /// Passes on what is new. `behind` when a file had more than its turn: the caller reads
  /// on at once instead of sleeping.
  public mutating func drain() -> (sawOutput: Bool, behind: Bool) {
    var saw = false
    var behind = false
    for task in tasks {
      for chunk in 0..<JobOutput.chunksPerTurn {
        let data = followers[task]!.readNew()
        if data.isEmpty { break }
        saw = true
        if chunk == JobOutput.chunksPerTurn - 1 { behind = true }
        pass(data, task: task)
      }
    }
    return (saw, behind)
  }

  /// The tasks are over: every file to the end it has now (a job that ignored its cancel
  /// and still writes cannot keep this going), and each array task's partial last line.
  public mutating func drainToEnd() {
    for task in tasks {
      let follower = followers[task]!
      let end = follower.size()
      while follower.bytesRead < end {
        let data = follower.readNew(atMost: end - follower.bytesRead)
        if data.isEmpty { break }
        pass(data, task: task)
      }
      if isArray {
        let rest = prefixers[task]!.finish()
        if !rest.isEmpty { console.output(rest) }
      }
    }
  }

  mutating func pass(_ data: Data, task: Int) {
    if isArray {
      let marked = prefixers[task]!.feed(data)
      if !marked.isEmpty { console.output(marked) }
    } else {
      console.output(data)
      lastByte = data.last
    }
  }
}
