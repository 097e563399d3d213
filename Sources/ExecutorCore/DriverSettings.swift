public import SbatchModel

/// The admin's settings for the driver (docs/executor.md lists every key with its default).
public struct DriverSettings: Equatable, Sendable, Codable {
  public enum Backend: String, Sendable, CaseIterable, Codable {
    /// Slurm when `sbatch` is on PATH, else the local backend.
    case auto, slurm, local
  }

  /// Where after_script runs.
  public enum AfterScriptPlacement: String, Sendable, CaseIterable, Codable {
    /// On the runner host, right away: it still runs after a cancel or a time limit, and
    /// does not wait in the queue again inside its own 5-minute limit.
    case local
    /// As a batch job like the script, with the same resources.
    case scheduler
  }

  public var backend: Backend = .auto
  /// Root of builds, caches and per-job state; on storage the compute nodes share.
  public var dataRoot: String
  public var afterScript: AfterScriptPlacement = .local
  /// sbatch flags put before every job's own SCHEDULER_PARAMETERS (e.g. a partition).
  public var defaultParameters: String = ""
  /// While a job waits in the queue, a line with Slurm's reason this often.
  public var heartbeatSeconds: Double = 30
  /// How often the controller is asked about a running job (the status file tells the
  /// normal end without asking).
  public var pollSeconds: Double = 10
  /// How old the account's shared status answer may get before one ci-run asks Slurm for
  /// all of them (one `squeue --me` per tick per account per host; 0: each ci-run polls on
  /// its own every `pollSeconds`). Only the admin sets it: no CI variable lowers it.
  public var statusTickSeconds: Double = 30
  /// How often the job's output files are read while it shows signs of life (`LoopPace`).
  public var outputPollMilliseconds: Double = 100
  /// How often they are read once it has been quiet for 10 s (`LoopPace`).
  public var idlePollMilliseconds: Double = 1000
  /// After a cancel, how long to wait for the job to end and its output to arrive.
  public var cancelWaitSeconds: Double = 20
  /// A job's time limit ends this long before GitLab's timeout stops the CI job: time for
  /// Slurm's TERM-then-KILL (KillWait), the last output to drain and the driver to report.
  public var drainMarginSeconds: Double = 60
  /// Keep staged scripts and Slurm output after the job (they may hold secrets).
  public var keepJobDirectories = false
  /// Keep the job's builds directory (the checkout) after the job.
  public var keepBuilds = false
  /// Keep each job's Slurm output under <data_root>/logs for this many days (0: not kept).
  public var keepLogsDays: Double = 0
  /// The CI job's exit code when some but not all of an array's tasks failed (0: the first
  /// failed task's code, as when all failed).
  public var partialArrayExitCode: Int32 = ArraySpec.partialFailureExitCode
  /// The runner's `output_limit` in bytes (gitlab-runner's default, 4 MiB): past it the
  /// runner drops the rest of the log, so the driver stops streaming before it, names the
  /// complete logs' artifact and prints only each task's tail (`LogBudget`).
  public var outputLimitBytes = 4 << 20
  /// A web page per Slurm job, `{id}` standing for its id (e.g.
  /// `https://portal.example/jobs/{id}`), linked from the CI job's page through
  /// `artifacts:reports:annotations`; empty: no such link (GitLab's links need a URL).
  public var slurmJobURL = ""
  /// Allowed/denied options and caps ([options] and [limits]).
  public var policy = OptionPolicy()
  /// Whose account a job runs as ([run_as]).
  public var runAs = RunAs()
  /// With run_as off, a runner running as root runs every CI job as root: only when the
  /// admin says so here (a single-user machine, the project's own tests).
  public var allowRoot = false

  /// Downscoping: when the runner runs as root, each job runs as a local account mapped
  /// from its GitLab user (or project), as GitLab's signed ID token names them.
  public struct RunAs: Equatable, Sendable, Codable {
    public enum Mode: String, Sendable, CaseIterable, Codable { case off, user, project }
    /// Where the identity comes from: only a token GitLab signed (a job's variables are
    /// the user's to set, GITLAB_USER_LOGIN among them).
    public enum Identity: String, Sendable, CaseIterable, Codable { case idToken = "id_token" }
    public var mode: Mode = .off
    public var identity: Identity = .idToken
    /// The job variable the ID token arrives in (the job's `id_tokens:` name).
    public var tokenVariable = "CI_SLURM_ID_TOKEN"
    /// GitLab's signing keys: the JSON served at <gitlab>/oauth/discovery/keys.
    public var jwksFile = ""
    /// The token's `iss`: the GitLab instance's URL.
    public var issuer = ""
    /// What the token's `aud` must contain (the job's `id_tokens: ... aud:`).
    public var audience = ""
    /// GitLab login (or project path) -> local account.
    public var accounts: [String: String] = [:]
    public init() {}
  }

  public init(dataRoot: String) { self.dataRoot = dataRoot }

  public struct Error: Swift.Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
  }

  static let keys = [
    "backend", "data_root", "after_script", "default_parameters", "heartbeat_seconds",
    "poll_seconds", "status_tick_seconds", "output_poll_ms", "idle_poll_ms", "cancel_wait_seconds", "drain_margin_seconds", "keep_job_dirs", "keep_builds",
    "keep_logs_days", "allow_root", "partial_array_exit_code", "output_limit", "slurm_job_url", "limits.max_time", "limits.max_cpus", "limits.max_memory",
    "limits.max_array_tasks", "limits.max_gpus", "limits.allowed_gres", "options.allowed", "options.denied",
    "run_as.mode", "run_as.identity", "run_as.token_variable", "run_as.jwks_file", "run_as.issuer",
    "run_as.audience", "run_as.accounts.<login>",
  ]

  /// Reads a settings file's text; `origin` names it in errors.
  public static func parse(_ text: String, origin: String, defaultDataRoot: String) throws -> DriverSettings {
    var settings = DriverSettings(dataRoot: defaultDataRoot)
    let entries: [String: (value: SettingsFile.Value, line: Int)]
    do {
      entries = try SettingsFile.parse(text)
    } catch let error as SettingsFile.ParseError {
      throw Error(message: "\(origin):\(error.line): \(error.message)")
    }
    for (key, entry) in entries.sorted(by: { $0.value.line < $1.value.line }) {
      let at = "\(origin):\(entry.line)"
      func string() throws -> String {
        guard case .string(let value) = entry.value else {
          throw Error(message: "\(at): '\(key)' must be a string, not \(entry.value.typeName)")
        }
        return value
      }
      func number(_ range: ClosedRange<Double>) throws -> Double {
        let value: Double
        switch entry.value {
        case .integer(let integer): value = Double(integer)
        case .float(let float): value = float
        default: throw Error(message: "\(at): '\(key)' must be a number, not \(entry.value.typeName)")
        }
        guard range.contains(value) else {
          throw Error(message: "\(at): '\(key)' must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
      }
      func boolean() throws -> Bool {
        guard case .boolean(let value) = entry.value else {
          throw Error(message: "\(at): '\(key)' must be true or false")
        }
        return value
      }
      func optionNames() throws -> Set<String> {
        guard case .array(let values) = entry.value else {
          throw Error(message: "\(at): '\(key)' must be an array of sbatch option names, e.g. [\"reservation\"]")
        }
        var names = Set<String>()
        for value in values {
          guard case .string(var name) = value else { throw Error(message: "\(at): '\(key)' must hold strings") }
          while name.hasPrefix("-") { name.removeFirst() }
          guard OptionPolicy.isKnownOption(name) else { throw Error(message: "\(at): '\(key)': --\(name) is not an sbatch option") }
          names.insert(name)
        }
        return names
      }
      func choice<T: RawRepresentable & CaseIterable>(_: T.Type) throws -> T where T.RawValue == String {
        let text = try string()
        guard let value = T(rawValue: text) else {
          let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
          throw Error(message: "\(at): '\(key)' must be one of \(allowed), not \"\(text)\"")
        }
        return value
      }
      switch key {
      case "backend": settings.backend = try choice(Backend.self)
      case "data_root":
        let root = try string()
        guard root.hasPrefix("/") else { throw Error(message: "\(at): 'data_root' must be an absolute path") }
        settings.dataRoot = root
      case "after_script": settings.afterScript = try choice(AfterScriptPlacement.self)
      case "default_parameters": settings.defaultParameters = try string()
      case "heartbeat_seconds": settings.heartbeatSeconds = try number(1...86400)
      case "poll_seconds": settings.pollSeconds = try number(0.5...3600)
      case "status_tick_seconds":
        let tick = try number(0...3600)
        guard tick == 0 || tick >= 1 else { throw Error(message: "\(at): 'status_tick_seconds' must be 0 (off) or at least 1") }
        settings.statusTickSeconds = tick
      case "output_poll_ms": settings.outputPollMilliseconds = try number(10...10000)
      case "idle_poll_ms": settings.idlePollMilliseconds = try number(10...10000)
      case "cancel_wait_seconds": settings.cancelWaitSeconds = try number(0...600)
      case "drain_margin_seconds": settings.drainMarginSeconds = try number(0...3600)
      case "keep_job_dirs": settings.keepJobDirectories = try boolean()
      case "keep_builds": settings.keepBuilds = try boolean()
      case "keep_logs_days": settings.keepLogsDays = try number(0...3650)
      case "allow_root": settings.allowRoot = try boolean()
      case "partial_array_exit_code":
        let code = try number(0...255)
        guard code == code.rounded() else { throw Error(message: "\(at): 'partial_array_exit_code' must be a whole number from 0 to 255") }
        settings.partialArrayExitCode = Int32(code)
      case "output_limit":
        let text = try string()
        guard let bytes = SlurmMemory.bytes(text), bytes >= 64 << 10 else {
          throw Error(message: "\(at): 'output_limit' must be a size of at least 64K such as \"4M\" (the runner's output_limit, which is in kilobytes: 4096 is \"4096K\")")
        }
        settings.outputLimitBytes = bytes
      case "slurm_job_url":
        let template = try string()
        guard template.hasPrefix("https://") || template.hasPrefix("http://"), template.contains(Annotations.idPlaceholder) else {
          throw Error(message: "\(at): 'slurm_job_url' must be an http(s) URL with {id} where the Slurm job id goes, e.g. \"https://portal.example/jobs/{id}\"")
        }
        settings.slurmJobURL = template
      case "limits.max_gpus": settings.policy.maxGPUs = Int(try number(0...1_000_000))
      case "limits.allowed_gres":
        guard case .array(let values) = entry.value else {
          throw Error(message: "\(at): 'limits.allowed_gres' must be an array of GRES names, e.g. [\"gpu\"]")
        }
        for value in values {
          guard case .string(let name) = value, !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-".contains($0)) }) else {
            throw Error(message: "\(at): 'limits.allowed_gres' must hold GRES names such as \"gpu\"")
          }
          settings.policy.allowedGRES.insert(name)
        }
      case "run_as.identity": settings.runAs.identity = try choice(RunAs.Identity.self)
      case "run_as.token_variable":
        let name = try string()
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
          throw Error(message: "\(at): 'run_as.token_variable' must be a variable name such as \"CI_SLURM_ID_TOKEN\"")
        }
        settings.runAs.tokenVariable = name
      case "run_as.jwks_file":
        let path = try string()
        guard path.hasPrefix("/") else { throw Error(message: "\(at): 'run_as.jwks_file' must be an absolute path") }
        settings.runAs.jwksFile = path
      case "run_as.issuer": settings.runAs.issuer = try string()
      case "run_as.audience": settings.runAs.audience = try string()
      case "limits.max_time":
        let text = try string()
        guard let seconds = try? SlurmTime.seconds(from: text) else {
          throw Error(message: "\(at): 'limits.max_time' must be a Slurm time such as \"24:00:00\" or \"2-00:00:00\"")
        }
        settings.policy.maxTimeSeconds = seconds
      case "limits.max_cpus": settings.policy.maxCPUs = Int(try number(1...1_000_000))
      case "limits.max_array_tasks": settings.policy.maxArrayTasks = Int(try number(1...10_000_000))
      case "limits.max_memory":
        let text = try string()
        guard let mb = SlurmMemory.megabytes(text) else {
          throw Error(message: "\(at): 'limits.max_memory' must be a size such as \"256G\"")
        }
        settings.policy.maxMemoryMB = mb
      case "options.allowed": settings.policy.allowed = try optionNames()
      case "options.denied": settings.policy.denied = try optionNames()
      case "run_as.mode": settings.runAs.mode = try choice(RunAs.Mode.self)
      case let account where account.hasPrefix("run_as.accounts."):
        let login = String(account.dropFirst("run_as.accounts.".count))
        let local = try string()
        guard !local.isEmpty, local.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
          throw Error(message: "\(at): '\(local)' is not a local account name")
        }
        settings.runAs.accounts[login] = local
      default:
        let best = keys.first { $0.hasPrefix(key) || key.hasPrefix($0) }
          ?? keys.min { editDistance($0, key) < editDistance($1, key) }.flatMap { editDistance($0, key) <= 3 ? $0 : nil }
        let hint = best.map { "; did you mean '\($0)'?" } ?? ""
        throw Error(message: "\(at): unknown setting '\(key)'\(hint)")
      }
    }
    if settings.runAs.mode != .off {
      for (key, value) in [("jwks_file", settings.runAs.jwksFile), ("issuer", settings.runAs.issuer), ("audience", settings.runAs.audience)]
      where value.isEmpty {
        throw Error(message: "\(origin): run_as.mode = \"\(settings.runAs.mode.rawValue)\" needs run_as.\(key): the job's identity comes from its GitLab ID token (docs/executor.md, run-as)")
      }
    }
    return settings
  }
}
