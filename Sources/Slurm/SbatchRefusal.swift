public import ChildProcesses

/// Why sbatch did not give a job id, in the classes the driver acts on. Pure: tested on
/// recorded sbatch stderr (Tests/SlurmTests/Fixtures/sbatch).
public enum SbatchRefusal: Equatable, Sendable {
  /// The user's request is wrong (a bad number, an unknown partition, an account or QOS the
  /// user lacks, more than the cluster has): a build failure, retrying cannot help.
  case request(String)
  /// Slurm's accounting refused the job: a submit limit (the queue is full for this user,
  /// wait) or a size/time limit (the request is wrong). Only the limits and the user's queue
  /// tell which; see `classifyAccounting`.
  case accountingPolicy(String)
  /// The site is full for now (MaxJobCount): wait and resubmit.
  case queueFull(String)
  /// The controller is busy or away: retry soon (the job may have been submitted).
  case transient(String)
  /// sbatch was killed or said nothing: it may have submitted the job.
  case maybeSubmitted(String)
  /// Anything else: the cluster is broken, the runner's system failure.
  case system(String)

  static let requestErrors = [
    "Invalid numeric value", "Invalid partition name", "invalid partition specified", "Invalid account",
    "Invalid qos specification", "Requested node configuration is not available", "More processors requested than permitted",
    "Invalid job array specification", "Requested time limit is invalid", "Invalid --", "Memory specification can not be satisfied",
    "Node count specification invalid", "Requested partition configuration not available", "User's group not permitted",
    "Invalid generic resource", "Invalid feature specification", "Job dependency problem", "Invalid dependency",
    "Invalid wckey", "Invalid node name specified", "Invalid nodelist", "Job size specification", "unrecognized option",
    "invalid option", "Invalid time", "Invalid reservation", "Access/permission denied", "Too many CPUs requested",
    "Invalid Trackable RESource", "Invalid GRES",
  ]
  static let accountingErrors = ["Job violates accounting/QOS policy"]
  static let queueFullErrors = ["Resource temporarily unavailable", "Slurm temporarily unable to accept job"]

  public static func classify(status: TerminationStatus, stderr: String) -> SbatchRefusal {
    let reason = SlurmErrorText.summary(stderr)
    if case .signaled(let number) = status { return .maybeSubmitted("sbatch was killed by signal \(number)") }
    if stderr.trimmedWhitespace().isEmpty { return .maybeSubmitted("sbatch failed (\(status)) without saying why") }
    func mentions(_ list: [String]) -> Bool { list.contains { stderr.localizedCaseInsensitiveContains($0) } }
    if mentions(queueFullErrors) { return .queueFull(reason) }
    if SlurmErrorText.isTransient(stderr) { return .transient(reason) }
    if mentions(accountingErrors) { return .accountingPolicy(reason) }
    if mentions(requestErrors) { return .request(reason) }
    return .system(reason)
  }

  /// An accounting refusal, decided from the user's submit limits and what the user has
  /// queued already (every array task counts as one job, as Slurm counts them).
  public static func classifyAccounting(reason: String, limits: [SubmitLimit], queued: [String: Int], tasks: Int) -> SbatchRefusal {
    for limit in limits {
      let used = limit.qos.map { queued[$0] ?? 0 } ?? queued.values.reduce(0, +)
      if tasks > limit.maxSubmit {
        return .request("\(reason): the job has \(tasks) tasks, over \(limit.what)'s limit of \(limit.jobs) per user")
      }
      if used + tasks > limit.maxSubmit { return .queueFull("queue full for this user (\(limit.what): \(limit.jobs))") }
    }
    return .request(reason)
  }
}

/// A per-user submit limit: a QOS's MaxSubmitJobsPerUser, or the association's MaxSubmitJobs.
public struct SubmitLimit: Equatable, Sendable {
  /// nil for the association's limit (all the user's jobs count).
  public var qos: String?
  public var maxSubmit: Int

  public init(qos: String?, maxSubmit: Int) {
    self.qos = qos
    self.maxSubmit = maxSubmit
  }

  var what: String { qos.map { "QOS \($0)" } ?? "the account" }
  var jobs: String { maxSubmit == 1 ? "1 job" : "\(maxSubmit) jobs" }

  /// `sacctmgr -n -P show qos where name=Q format=Name,MaxSubmitPU`: `ci-limit1|1`; an
  /// empty limit is none.
  public static func parseQOS(_ text: String) -> [SubmitLimit] {
    text.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: "|", omittingEmptySubsequences: false)
      guard fields.count >= 2, let limit = SlurmNumber.parse(fields[1]) else { return nil }
      return SubmitLimit(qos: String(fields[0]), maxSubmit: limit)
    }
  }

  /// `sacctmgr -n -P show assoc where user=U format=DefaultQOS,MaxSubmit`: the default QOS
  /// (empty means `normal`) and the association's own limit, per association row.
  public static func parseAssociations(_ text: String) -> (defaultQOS: String?, limits: [SubmitLimit]) {
    var qos: String?
    var limits: [SubmitLimit] = []
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: "|", omittingEmptySubsequences: false)
      guard fields.count >= 2 else { continue }
      if qos == nil, !fields[0].isEmpty { qos = String(fields[0]) }
      if let limit = SlurmNumber.parse(fields[1]) { limits.append(SubmitLimit(qos: nil, maxSubmit: limit)) }
    }
    return (qos, limits)
  }
}

/// Counts of Slurm's numbers: plain digits only, and nil (not a trap) past Int's range.
enum SlurmNumber {
  static func parse(_ text: Substring) -> Int? {
    guard !text.isEmpty, text.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
    return Int(text)
  }
}
