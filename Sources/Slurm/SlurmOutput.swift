#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
public import Scheduling
public import SbatchModel

// Pure parsers of what Slurm's commands print. No I/O here: tests feed them recorded output
// (Tests/SlurmTests/Fixtures).

/// `sbatch --parsable` prints `ID` or `ID;CLUSTER`.
public enum SbatchOutput {
  public static func jobID(from stdout: String) -> JobID? {
    let line = stdout.split(separator: "\n").last { !$0.isEmpty } ?? ""
    let id = line.split(separator: ";").first.map(String.init) ?? ""
    guard !id.isEmpty, id.allSatisfy({ $0.isNumber }) else { return nil }
    return JobID(id)
  }
}

/// One line of `squeue -h -r -t all -o '%A|%F|%K|%T|%r|%l|%N'`.
public struct SqueueRecord: Equatable, Sendable {
  public static let format = "%A|%F|%K|%T|%r|%l|%N"

  public var jobID: String
  public var arrayJobID: String
  /// The task id, nil for a plain job; a still-combined pending rest (`2-5%2`) is kept
  /// in `pendingRest` instead.
  public var taskID: Int?
  public var pendingRest: String?
  public var state: String
  public var reason: String
  public var timeLimit: String
  public var nodes: String

  public static func parse(_ line: Substring) -> SqueueRecord? {
    let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
    guard fields.count == 7, !fields[0].isEmpty, !fields[3].isEmpty else { return nil }
    var task: Int? = nil
    var rest: String? = nil
    if fields[2] != "N/A" {
      if let id = Int(fields[2]) { task = id } else { rest = fields[2] }
    }
    return SqueueRecord(
      jobID: fields[0], arrayJobID: fields[1], taskID: task, pendingRest: rest, state: fields[3],
      reason: fields[4], timeLimit: fields[5], nodes: fields[6])
  }

  public static func parseAll(_ text: String) -> [SqueueRecord] {
    text.split(separator: "\n").compactMap(parse)
  }

  /// Folds the records of one job into the scheduler-neutral snapshot.
  public static func snapshot(_ records: [SqueueRecord]) -> JobSnapshot {
    var snapshot = JobSnapshot()
    if records.isEmpty { snapshot.unknown = true }
    for record in records {
      let state = SlurmState.taskState(record.state, reason: record.reason)
      if let rest = record.pendingRest {
        snapshot.addRest(rest, state: state, reason: record.reason)
      } else {
        snapshot.tasks[record.taskID ?? 0] = state
      }
    }
    return snapshot
  }
}

/// One answer of `squeue --me` for every job of the account, as the shared status file
/// holds it (`SharedStatusScheduler`): a header line saying when squeue was asked and
/// whether it answered, then its rows (or its error) as it printed them.
public struct AccountListing: Equatable, Sendable {
  /// By user, not by job id: one query answers for every CI job of the account. `-t all`
  /// keeps jobs that just ended (slurmctld lists them for MinJobAge).
  public static let arguments = ["squeue", "--me", "-h", "-r", "-t", "all", "-o", SqueueRecord.format]
  static let header = "ci-slurm account listing 1"

  /// When squeue was asked (before it ran: every job submitted earlier is in the answer).
  public var takenAt: Date
  public var answer: Result<[SqueueRecord], SchedulerError>

  public init(takenAt: Date, answer: Result<[SqueueRecord], SchedulerError>) {
    self.takenAt = takenAt
    self.answer = answer
  }

  public static func render(takenAt: Date, stdout: String) -> String {
    "\(header) \(takenAt.timeIntervalSince1970) ok\n" + stdout
  }

  public static func render(takenAt: Date, failure: SchedulerError) -> String {
    "\(header) \(takenAt.timeIntervalSince1970) failed\n" + failure.message.replacingNewlines()
  }

  /// nil for anything but what `render` writes.
  public static func parse(_ text: String) -> AccountListing? {
    let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let words = lines[0].split(separator: " ")
    guard words.count == 6, words[0..<4].joined(separator: " ") == header, let seconds = Double(words[4]), seconds.isFinite
    else { return nil }
    let body = lines.count > 1 ? String(lines[1]) : ""
    let takenAt = Date(timeIntervalSince1970: seconds)
    switch words[5] {
    case "ok": return AccountListing(takenAt: takenAt, answer: .success(SqueueRecord.parseAll(body)))
    case "failed": return AccountListing(takenAt: takenAt, answer: .failure(SchedulerError(.unavailable, body)))
    default: return nil
    }
  }

  /// The rows of one job: a plain job's and each of an array's tasks, whose own id (`%A`)
  /// differs from the array's (`%F`).
  func records(of id: JobID) throws -> [SqueueRecord] {
    try answer.get().filter { $0.arrayJobID == id.raw }
  }

  /// What the listing says of the job; nil when it does not list it (ended long ago, or
  /// submitted after the listing was taken).
  public func snapshot(of id: JobID) throws -> JobSnapshot? {
    let rows = try records(of: id)
    return rows.isEmpty ? nil : SqueueRecord.snapshot(rows)
  }

  /// The job's pending reasons, as `SlurmScheduler.pendingReason` gives them.
  public func pendingReason(of id: JobID) -> String? {
    let rows = (try? records(of: id)) ?? []
    let reasons = Set(rows.filter { SlurmState.taskState($0.state, reason: "") == .pending(reason: "") }.map(\.reason))
    return SlurmScheduler.joinedReasons(reasons)
  }
}

extension String {
  func replacingNewlines() -> String { split(whereSeparator: \.isNewline).joined(separator: " ") }
}

extension JobSnapshot {
  /// An array's not-yet-split rest (`88-98%4`, `1,3,5-7`): each of its tasks is listed with
  /// the rest's state, so that the tasks still waiting count as not ended. Rows for single
  /// tasks win over the rest. A rest that cannot be read leaves its tasks unlisted, which
  /// keeps them unfinished rather than ending them early.
  mutating func addRest(_ rest: String, state: TaskState, reason: String) {
    if case .pending = state { pendingRest = "\(rest) (\(reason))" }
    guard let spec = try? ArraySpec(parsing: rest) else { return }
    for task in spec.taskIDs where tasks[task] == nil { tasks[task] = state }
  }
}

/// Slurm's final job states, as squeue, scontrol and sacct name them.
public enum SlurmState {
  /// Where a job state leaves the driver: waiting, running, or ended.
  public static func taskState(_ state: String, reason: String) -> JobSnapshot.TaskState {
    switch state.split(separator: " ").first.map(String.init) ?? state {
    case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED", "RESV_DEL_HOLD":
      return .pending(reason: reason)
    case "RUNNING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED":
      return .running
    default:
      // COMPLETING included: the batch script has exited and Slurm is killing whatever it
      // left; nothing of the job runs on. Waiting for COMPLETED as well cost 1.6 s per job
      // after a 1 GB burst (docs/benchmarks.md); the end state is still asked until it
      // settles when the task has no clean status.
      return .ended
    }
  }

  /// `sacct` appends the canceller: `CANCELLED by 1000`.
  public static func taskEnd(state: String, exitCode: String, timeLimit: String?, nodes: String?)
    -> TaskEnd
  {
    let words = state.split(separator: " ")
    let name = words.first.map(String.init) ?? state
    let kind: TaskEnd.Kind
    switch name {
    case "COMPLETED": kind = .completed
    case "FAILED": kind = .failed
    case "TIMEOUT": kind = .timeout
    case "CANCELLED":
      let by = words.count >= 3 && words[1] == "by" ? String(words[2]) : nil
      kind = .cancelled(by: by)
    case "NODE_FAIL": kind = .nodeFailure
    case "BOOT_FAIL": kind = .bootFailure
    case "PREEMPTED": kind = .preempted
    case "OUT_OF_MEMORY": kind = .outOfMemory
    case "DEADLINE": kind = .deadline
    default: kind = .other(state)
    }
    let (code, signal) = parseExitCode(exitCode)
    return TaskEnd(
      kind: kind, exitCode: code, signal: signal,
      timeLimit: timeLimit.flatMap { $0.isEmpty ? nil : $0 },
      nodes: nodes.flatMap { $0.isEmpty || $0 == "(null)" || $0 == "None assigned" ? nil : $0 })
  }

  /// `code:signal`, as in `ExitCode=3:0` or `0:15`.
  public static func parseExitCode(_ text: String) -> (Int32, Int32) {
    let parts = text.split(separator: ":")
    let code = parts.first.flatMap { Int32($0) } ?? 0
    let signal = parts.count > 1 ? Int32(parts[1]) ?? 0 : 0
    return (code, signal)
  }
}

/// `scontrol show job -o ID`: one line per job (per task for arrays) of `Key=Value` pairs.
public struct ScontrolJob: Equatable, Sendable {
  public var fields: [String: String]

  public subscript(key: String) -> String? { fields[key] }

  /// Values may hold spaces (`Command=`, `Comment=`), so a new field starts only at a word
  /// that looks like `Key=`.
  public static func parse(_ line: Substring) -> ScontrolJob? {
    var fields: [String: String] = [:]
    var currentKey: String?
    var currentValue = ""
    for word in line.split(separator: " ", omittingEmptySubsequences: true) {
      if let equals = word.firstIndex(of: "="),
        word[..<equals].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "/" || $0 == ":" || $0 == "_" }),
        !word[..<equals].isEmpty
      {
        if let key = currentKey { fields[key] = currentValue }
        currentKey = String(word[..<equals])
        currentValue = String(word[word.index(after: equals)...])
      } else if currentKey != nil {
        currentValue += " " + word
      }
    }
    if let key = currentKey { fields[key] = currentValue }
    guard fields["JobId"] != nil else { return nil }
    return ScontrolJob(fields: fields)
  }

  public static func parseAll(_ text: String) -> [ScontrolJob] {
    text.split(separator: "\n").compactMap(parse)
  }

  public var taskID: Int? { fields["ArrayTaskId"].flatMap { Int($0) } }

  public var end: TaskEnd {
    SlurmState.taskEnd(
      state: fields["JobState"] ?? "", exitCode: fields["ExitCode"] ?? "0:0",
      timeLimit: fields["TimeLimit"], nodes: fields["NodeList"])
  }
}

/// One row of `sacct -P -n -X --format=JobIDRaw,JobID,State,ExitCode,Timelimit,NodeList[,Reason]`.
/// With `-X` only allocations are listed; without it `.batch` and `.extern` step rows come
/// too, and are skipped here.
public struct SacctRecord: Equatable, Sendable {
  public static let format = "JobIDRaw,JobID,State,ExitCode,Timelimit,NodeList"

  public var rawID: String
  /// `123`, `123_4`, `123_[5-9%2]`.
  public var jobID: String
  public var state: String
  public var reason: String
  public var end: TaskEnd

  /// With the pending reason, for polling (sacct asks slurmdbd, not slurmctld).
  public static let pollFormat = format + ",Reason"

  public static func parse(_ line: Substring) -> SacctRecord? {
    guard let row = SacctRow.parse(line, fieldCount: 7, minimum: 6), !row.isStep else { return nil }
    return SacctRecord(
      rawID: row[0], jobID: row[1], state: row[2], reason: row[6],
      end: SlurmState.taskEnd(state: row[2], exitCode: row[3], timeLimit: row[4], nodes: row[5]))
  }

  public static func parseAll(_ text: String) -> [SacctRecord] {
    text.split(whereSeparator: \.isNewline).compactMap(parse)
  }

  /// Folds one job's rows into the scheduler-neutral snapshot; a row like `123_[2-5%2]` is
  /// the array's not-yet-started rest.
  public static func snapshot(_ records: [SacctRecord]) -> JobSnapshot {
    var snapshot = JobSnapshot()
    for record in records {
      let state = SlurmState.taskState(record.state, reason: record.reason)
      if record.jobID.contains("_[") {
        let rest = record.jobID.split(separator: "[").last.map { String($0.dropLast()) } ?? record.jobID
        snapshot.addRest(rest, state: state, reason: record.reason)
      } else {
        snapshot.tasks[record.taskID ?? 0] = state
      }
    }
    return snapshot
  }

  /// The array task id from `123_4`; nil for a plain job or a combined pending row.
  public var taskID: Int? {
    guard let underscore = jobID.firstIndex(of: "_") else { return nil }
    return Int(jobID[jobID.index(after: underscore)...])
  }
}

/// What each task used, from `sacct -P -n --format=JobID,Elapsed,MaxRSS,NodeList` (no `-X`):
/// the allocation row gives the elapsed time and node, its step rows (`.batch`, `.0`) the
/// memory, the largest of them.
public enum SacctUsage {
  public static let format = "JobID,Elapsed,MaxRSS,NodeList"

  public static func parse(_ text: String) -> [Int: TaskUsage] {
    var usage: [Int: TaskUsage] = [:]
    var largest: [Int: Int] = [:]
    for row in SacctRow.parseAll(text, fieldCount: 4, minimum: 4) {
      let allocation = row.id.split(separator: ".", maxSplits: 1)[0]
      // `123` for a plain job, `123_4` for a task; the pending rest `123_[5-9]` has no usage.
      if allocation.contains("[") { continue }
      let task = allocation.split(separator: "_").dropFirst().first.map { Int($0) } ?? 0
      guard let task else { continue }
      var entry = usage[task] ?? TaskUsage()
      if row.isStep {
        if let kib = kibibytes(row[2]), kib > largest[task, default: -1] {
          largest[task] = kib
          entry.maxRSS = row[2]
        }
      } else {
        entry.elapsed = row[1].isEmpty ? nil : row[1]
        entry.node = row[3].isEmpty || row[3] == "None assigned" ? nil : row[3]
      }
      usage[task] = entry
    }
    return usage
  }

  /// `1234K`, `12M`, `1.5G`, `0` as KiB, to compare steps.
  static func kibibytes(_ text: String) -> Int? {
    guard let last = text.last else { return nil }
    let units: [Character: Double] = ["K": 1, "M": 1024, "G": 1024 * 1024, "T": 1024 * 1024 * 1024]
    if let unit = units[last], let value = Double(text.dropLast()) { return Int(value * unit) }
    return Double(text).map { Int($0 / 1024) }
  }
}

/// Slurm client errors that mean "try again": the controller is restarting, busy or away.
public enum SlurmErrorText {
  static let transient = [
    "Socket timed out", "Unable to contact slurm controller", "Zero Bytes were transmitted",
    "Connection refused", "Communication connection failure", "Transport endpoint",
    "Slurm backup controller in standby mode", "Resource temporarily unavailable",
    "Connection timed out", "Slurmctld not responding", "Unable to establish connection",
    "slurm_persist_conn_open_without_init", "Unexpected message received",
  ]

  public static func isTransient(_ stderr: String) -> Bool {
    transient.contains { stderr.localizedCaseInsensitiveContains($0) }
  }

  public static func isUnknownJob(_ stderr: String) -> Bool {
    stderr.contains("Invalid job id specified")
  }

  /// The most useful line of sbatch's error output: Slurm's reason, without the prefix.
  public static func summary(_ stderr: String) -> String {
    let lines = stderr.split(separator: "\n").map { line -> String in
      var text = Substring(line)
      for prefix in ["sbatch: error: ", "squeue: error: ", "scancel: error: ", "scontrol: error: "]
      where text.hasPrefix(prefix) {
        text = text.dropFirst(prefix.count)
      }
      return String(text)
    }.filter { !$0.isEmpty }
    if let refusal = lines.first(where: { $0.hasPrefix("Batch job submission failed: ") }) {
      let reason = refusal.dropFirst("Batch job submission failed: ".count)
      let detail = lines.first { !$0.hasPrefix("Batch job submission failed") }
      return detail.map { "\(reason) (\($0))" } ?? String(reason)
    }
    return lines.first ?? "no error text"
  }
}

extension String {
  func localizedCaseInsensitiveContains(_ other: String) -> Bool {
    lowercased().contains(other.lowercased())
  }
}
