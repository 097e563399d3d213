// The ledger's record is the driver's wire type (CustomExecutorAPI), read as it writes it.
public import CustomExecutorAPI
public import Foundation
import SbatchModel
import Workers

/// One CI job of the pipeline as the executor driver saw it (a line of the ledger that
/// ci-run appends to `$CI_SLURM_JOBS_LEDGER`), completed with Slurm's accounting.
public struct CIJobRow: Equatable, Sendable {
  public var name: String
  public var stage: String
  public var scheduler: String
  public var schedulerJob: String
  public var nodes: String
  public var queued: String
  public var ran: String
  public var state: String
  /// Like `seff`: CPU efficiency, MaxRSS against the requested memory, elapsed against the
  /// time limit; empty without accounting.
  public var efficiency: String

  public init(
    name: String, stage: String, scheduler: String, schedulerJob: String, nodes: String, queued: String, ran: String, state: String,
    efficiency: String = ""
  ) {
    (self.name, self.stage, self.scheduler, self.schedulerJob) = (name, stage, scheduler, schedulerJob)
    (self.nodes, self.queued, self.ran, self.state, self.efficiency) = (nodes, queued, ran, state, efficiency)
  }
}

/// One Slurm job or array task in `sacct`, with its steps' MaxRSS folded in.
public struct TaskAccounting: Equatable, Sendable {
  public var id: String
  public var node: String
  public var submit: Date?
  public var start: Date?
  public var end: Date?
  public var state: String
  public var elapsed: Double?
  public var cpuSeconds: Double?
  public var cpus: Int?
  public var requestedMemory: Double?
  public var maxRSS: Double?
  public var timeLimit: Double?
}

/// What sacct says about one job (array tasks folded into their job).
public struct AccountingRow: Equatable, Sendable {
  public var nodes: [String]
  public var submit: Date?
  public var start: Date?
  public var end: Date?
  public var states: [String]
  public var tasks: [TaskAccounting]
}

public enum JobTable {
  /// The fields publish asks sacct for (`sacct -n -P -o ...`), in this order. Without -X,
  /// so the steps' lines (`62_3.batch`) bring MaxRSS, which the allocation line lacks.
  public static let sacctFields = "JobID,NodeList,Submit,Start,End,State,ElapsedRaw,TotalCPU,AllocCPUS,ReqMem,MaxRSS,TimelimitRaw"
  static let sacctFieldCount = sacctFields.split(separator: ",").count

  /// Parses sacct's parsable output; times are the controller's local time, as sacct
  /// prints them (`2026-11-23T10:31:09`, or `Unknown`/`None` while not there yet).
  public static func parseSacct(_ text: String, timeZone: TimeZone = .current) -> [String: AccountingRow] {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = timeZone
    formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
    // Job ids can come back after the accounting database outlived a controller reset:
    // for each full id (array task and step included) the latest submission wins.
    var latest: [String: [String]] = [:]
    var order: [String] = []
    for row in SacctRow.parseAll(text, fieldCount: sacctFieldCount, minimum: 6) {
      let fields = row.fields
      if let seen = latest[fields[0]] {
        if fields[2] >= seen[2] { latest[fields[0]] = fields }
      } else {
        latest[fields[0]] = fields
        order.append(fields[0])
      }
    }
    var tasks: [String: TaskAccounting] = [:]
    var taskOrder: [String] = []
    for id in order where !id.contains(".") {
      let fields = latest[id]!
      let job = String(id.split(separator: "_").first ?? "")
      guard !job.isEmpty, job.allSatisfy(\.isNumber) else { continue }
      let cpus = Int(fields[8])
      tasks[id] = TaskAccounting(
        id: id, node: fields[1] == "None assigned" ? "" : fields[1], submit: formatter.date(from: fields[2]),
        start: formatter.date(from: fields[3]), end: formatter.date(from: fields[4]),
        state: String(fields[5].split(separator: " ").first ?? ""), elapsed: Double(fields[6]), cpuSeconds: SlurmTime.accountedSeconds(fields[7]),
        cpus: cpus, requestedMemory: SlurmMemory.accountedBytes(fields[9], cpus: cpus), maxRSS: nil, timeLimit: Double(fields[11]).map { $0 * 60 })
      taskOrder.append(id)
    }
    // Steps of the chosen submission only (a stale record's steps are older).
    for id in order where id.contains(".") {
      let fields = latest[id]!
      let parent = String(id.split(separator: ".")[0])
      guard var task = tasks[parent], fields[2] >= (latest[parent]?[2] ?? "") else { continue }
      if let rss = SlurmMemory.accountedBytes(fields[10], cpus: nil) { task.maxRSS = max(task.maxRSS ?? 0, rss) }
      if (task.cpuSeconds ?? 0) == 0, let cpu = SlurmTime.accountedSeconds(fields[7]) { task.cpuSeconds = (task.cpuSeconds ?? 0) + cpu }
      tasks[parent] = task
    }
    var rows: [String: AccountingRow] = [:]
    for id in taskOrder {
      let task = tasks[id]!
      let job = String(id.split(separator: "_")[0])
      var row = rows[job] ?? AccountingRow(nodes: [], submit: nil, start: nil, end: nil, states: [], tasks: [])
      row.tasks.append(task)
      if !task.node.isEmpty, !row.nodes.contains(task.node) { row.nodes.append(task.node) }
      if let submit = task.submit { row.submit = min(row.submit ?? submit, submit) }
      if let start = task.start { row.start = min(row.start ?? start, start) }
      if let end = task.end { row.end = max(row.end ?? end, end) }
      if !task.state.isEmpty, !row.states.contains(task.state) { row.states.append(task.state) }
      rows[job] = row
    }
    return rows
  }

  /// A seff-like line over a job's tasks: CPU time over cores × elapsed, the largest
  /// MaxRSS against the memory asked for, the longest task against the time limit. What
  /// accounting did not record (MaxRSS without a jobacct_gather plugin; CPU time of a job
  /// shorter than sacct's 1 s) is said, not shown as 0%.
  public static func efficiency(_ tasks: [TaskAccounting]) -> String {
    let finished = tasks.filter { $0.end != nil }
    guard !finished.isEmpty else { return "" }
    var parts: [String] = []
    let coreSeconds = finished.reduce(0.0) { $0 + ($1.elapsed ?? 0) * Double($1.cpus ?? 1) }
    let cpu = finished.reduce(0.0) { $0 + ($1.cpuSeconds ?? 0) }
    let cores = finished.compactMap(\.cpus).max() ?? 1
    parts.append(
      coreSeconds > 0
        ? String(format: "CPU %.0f%% of %d core%@", 100 * cpu / coreSeconds, cores, cores == 1 ? "" : "s") : "CPU: ran under 1 s")
    let asked = finished.compactMap(\.requestedMemory).max()
    if let rss = finished.compactMap(\.maxRSS).max(), let asked, asked > 0 {
      parts.append(String(format: "memory %@ of %@ (%.1f%%)", bytes(rss), bytes(asked), 100 * rss / asked))
    } else if let asked {
      parts.append("memory \(bytes(asked)) asked, MaxRSS not recorded")
    }
    if let longest = finished.compactMap(\.elapsed).max(), let limit = finished.compactMap(\.timeLimit).max(), limit > 0 {
      parts.append(String(format: "elapsed %@ of %@ (%.1f%%)", duration(longest), duration(limit), 100 * longest / limit))
    }
    return (finished.count > 1 ? "\(finished.count) tasks: " : "") + parts.joined(separator: " · ")
  }

  static func bytes(_ value: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = value
    var index = 0
    while value >= 1024, index < units.count - 1 {
      value /= 1024
      index += 1
    }
    return index == 0 ? String(format: "%.0f B", value) : String(format: "%.1f %@", value, units[index])
  }

  /// Folds the ledger into one row per scheduler job, in submission order, with the
  /// accounting where there is some (Slurm) and the ledger's own times otherwise (local).
  /// `currentJob` (CI_JOB_ID) is publish's own job: the page is written before it ends.
  public static func rows(ledger: [LedgerRecord], accounting: [String: AccountingRow], currentJob: String? = nil, now: Date = Date()) -> [CIJobRow] {
    let submitted = ledger.filter { $0.event == LedgerRecord.submitted }
    var ended: [String: LedgerRecord] = [:]
    for record in ledger where record.event == LedgerRecord.ended { ended[record.schedulerJobID] = record }
    return submitted.map { record in
      let end = ended[record.schedulerJobID]
      let own = end == nil && record.ciJobID == currentJob
      var row = CIJobRow(
        name: record.ciJobName, stage: record.ciJobStage, scheduler: record.scheduler, schedulerJob: record.schedulerJobID,
        nodes: record.host ?? "", queued: "0 s", ran: "", state: own ? "this job" : end?.result ?? "running")
      if let account = accounting[record.schedulerJobID.split(separator: "_").first.map(String.init) ?? ""] {
        row.nodes = account.nodes.joined(separator: ", ")
        if let submit = account.submit, let start = account.start { row.queued = duration(start.timeIntervalSince(submit)) } else {
          row.queued = "pending"
        }
        if let start = account.start { row.ran = duration((account.end ?? now).timeIntervalSince(start)) }
        // A job the ledger has not seen end (the report's own job) is still running,
        // whatever accounting caught mid-way.
        if end != nil, !account.states.isEmpty { row.state = account.states.joined(separator: ", ").lowercased() }
        if account.tasks.count > 1 { row.schedulerJob += " (\(account.tasks.count) tasks)" }
        if end != nil { row.efficiency = efficiency(account.tasks) }
      } else {
        row.ran = duration((end.map { Date(timeIntervalSince1970: $0.time) } ?? now).timeIntervalSince(Date(timeIntervalSince1970: record.time)))
      }
      return row
    }
  }

  static func duration(_ seconds: TimeInterval) -> String {
    let value = max(0, seconds)
    if value < 60 { return String(format: "%.0f s", value) }
    if value < 3600 { return String(format: "%d min %02d s", Int(value) / 60, Int(value) % 60) }
    return String(format: "%d h %02d min", Int(value) / 3600, Int(value) % 3600 / 60)
  }

  public static func readLedger(_ path: String) throws -> [LedgerRecord] {
    guard let data = FileManager.default.contents(atPath: path) else { throw WorkerError("publish: cannot read the jobs ledger \(path)") }
    do {
      return try LedgerRecord.decodeLines(data)
    } catch {
      throw WorkerError("publish: \(path):\(error.line): not a ledger record")
    }
  }
}
