#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif

/// Names gitlab-runner's custom executor uses to talk to a driver
/// (gitlab-runner `executors/custom/api`, docs/executors/custom.md).
public enum RunnerVariable {
  public static let buildFailureExitCode = "BUILD_FAILURE_EXIT_CODE"
  public static let systemFailureExitCode = "SYSTEM_FAILURE_EXIT_CODE"
  public static let buildExitCodeFile = "BUILD_EXIT_CODE_FILE"
  public static let jobResponseFile = "JOB_RESPONSE_FILE"
  /// Every job variable reaches the driver with this prefix.
  public static let jobPrefix = "CUSTOM_ENV_"
}

/// What config_exec prints on stdout (gitlab-runner `api.ConfigExecOutput`); snake_case
/// keys exactly as the runner reads them.
public struct ConfigExecOutput: Codable, Equatable, Sendable {
  public struct Driver: Codable, Equatable, Sendable {
    public var name: String
    public var version: String
    public init(name: String, version: String) {
      self.name = name
      self.version = version
    }
  }

  public var buildsDir: String?
  public var cacheDir: String?
  public var buildsDirIsShared: Bool?
  public var hostname: String?
  public var driver: Driver?
  public var jobEnv: [String: String]?
  public var shell: String?

  public init(
    buildsDir: String? = nil, cacheDir: String? = nil, buildsDirIsShared: Bool? = nil,
    hostname: String? = nil, driver: Driver? = nil, jobEnv: [String: String]? = nil,
    shell: String? = nil
  ) {
    self.buildsDir = buildsDir
    self.cacheDir = cacheDir
    self.buildsDirIsShared = buildsDirIsShared
    self.hostname = hostname
    self.driver = driver
    self.jobEnv = jobEnv
    self.shell = shell
  }

  enum CodingKeys: String, CodingKey {
    case buildsDir = "builds_dir"
    case cacheDir = "cache_dir"
    case buildsDirIsShared = "builds_dir_is_shared"
    case hostname
    case driver
    case jobEnv = "job_env"
    case shell
  }

  /// One line of JSON with stable key order.
  public func encoded() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }
}

/// The stage name run_exec gets as its last argument.
public enum RunStage: Equatable, Hashable, Sendable, CustomStringConvertible {
  case prepareScript
  case getSources
  case clearWorktree
  case restoreCache
  case downloadArtifacts
  /// The user's script; the runner sends `step_script` as `build_script`.
  case buildScript
  /// Other user steps: `step_release` and friends.
  case step(String)
  case afterScript
  case archiveCache
  case archiveCacheOnFailure
  case uploadArtifactsOnSuccess
  case uploadArtifactsOnFailure
  case cleanupFileVariables
  case unknown(String)

  public init(_ name: String) {
    switch name {
    case "prepare_script": self = .prepareScript
    case "get_sources": self = .getSources
    case "clear_worktree": self = .clearWorktree
    case "restore_cache": self = .restoreCache
    case "download_artifacts": self = .downloadArtifacts
    case "build_script", "step_script": self = .buildScript
    case "after_script": self = .afterScript
    case "archive_cache": self = .archiveCache
    case "archive_cache_on_failure": self = .archiveCacheOnFailure
    case "upload_artifacts_on_success": self = .uploadArtifactsOnSuccess
    case "upload_artifacts_on_failure": self = .uploadArtifactsOnFailure
    case "cleanup_file_variables": self = .cleanupFileVariables
    default:
      if name.hasPrefix("step_") { self = .step(String(name.dropFirst(5))) } else { self = .unknown(name) }
    }
  }

  public var description: String {
    switch self {
    case .prepareScript: return "prepare_script"
    case .getSources: return "get_sources"
    case .clearWorktree: return "clear_worktree"
    case .restoreCache: return "restore_cache"
    case .downloadArtifacts: return "download_artifacts"
    case .buildScript: return "build_script"
    case .step(let name): return "step_\(name)"
    case .afterScript: return "after_script"
    case .archiveCache: return "archive_cache"
    case .archiveCacheOnFailure: return "archive_cache_on_failure"
    case .uploadArtifactsOnSuccess: return "upload_artifacts_on_success"
    case .uploadArtifactsOnFailure: return "upload_artifacts_on_failure"
    case .cleanupFileVariables: return "cleanup_file_variables"
    case .unknown(let name): return name
    }
  }

  /// The user's own script stages: the ones a batch system should run.
  public var isUserScript: Bool {
    switch self {
    case .buildScript, .step: return true
    default: return false
    }
  }
}

/// The environment a driver phase was started with, read the way the runner meant it.
public struct RunnerEnvironment: Sendable {
  public var values: [String: String]

  public init(_ values: [String: String]) { self.values = values }

  /// A job variable (`CUSTOM_ENV_<name>`), nil when unset or empty.
  public func job(_ name: String) -> String? {
    guard let value = values[RunnerVariable.jobPrefix + name], !value.isEmpty else { return nil }
    return value
  }

  /// The runner's exit codes; never hard-coded, the runner says which to use.
  public var buildFailureExitCode: Int32? { values[RunnerVariable.buildFailureExitCode].flatMap { Int32($0) } }
  public var systemFailureExitCode: Int32? { values[RunnerVariable.systemFailureExitCode].flatMap { Int32($0) } }
  public var buildExitCodeFile: String? {
    guard let path = values[RunnerVariable.buildExitCodeFile], !path.isEmpty else { return nil }
    return path
  }
  public var jobResponseFile: String? {
    guard let path = values[RunnerVariable.jobResponseFile], !path.isEmpty else { return nil }
    return path
  }
}

/// The job payload the runner writes to JOB_RESPONSE_FILE (gitlab-runner `common.JobResponse`):
/// the fields a driver reads, and ci-local writes. The runner keeps GitLab's order of
/// `variables`; a key may appear more than once.
public struct JobPayload: Codable, Equatable, Sendable {
  public struct Variable: Codable, Equatable, Sendable {
    public var key: String?
    public var value: String?
    public var isPublic: Bool?
    public var masked: Bool?
    public var file: Bool?

    public init(key: String, value: String, isPublic: Bool = true, masked: Bool = false, file: Bool = false) {
      self.key = key
      self.value = value
      self.isPublic = isPublic
      self.masked = masked
      self.file = file
    }

    public init(from decoder: any Decoder) throws {
      // Lenient per entry: one odd entry must not hide the others.
      let container = try decoder.container(keyedBy: CodingKeys.self)
      key = try? container.decode(String.self, forKey: .key)
      value = try? container.decode(String.self, forKey: .value)
      isPublic = try? container.decode(Bool.self, forKey: .isPublic)
      masked = try? container.decode(Bool.self, forKey: .masked)
      file = try? container.decode(Bool.self, forKey: .file)
    }

    enum CodingKeys: String, CodingKey {
      case key, value, masked, file
      case isPublic = "public"
    }
  }

  public struct RunnerInfo: Codable, Equatable, Sendable {
    /// The CI job's timeout in seconds, as GitLab set it for this job.
    public var timeout: Int?
    public init(timeout: Int?) { self.timeout = timeout }
  }

  public struct JobInfo: Codable, Equatable, Sendable {
    public var name: String?
    public var stage: String?
    public var projectID: Int?
    public var projectName: String?

    public init(name: String?, stage: String?, projectID: Int?, projectName: String?) {
      self.name = name
      self.stage = stage
      self.projectID = projectID
      self.projectName = projectName
    }

    enum CodingKeys: String, CodingKey {
      case name, stage
      case projectID = "project_id"
      case projectName = "project_name"
    }
  }

  public struct Step: Codable, Equatable, Sendable {
    public var name: String
    public var script: [String]
    public var timeout: Int
    public var when: String
    public init(name: String, script: [String], timeout: Int, when: String) {
      self.name = name
      self.script = script
      self.timeout = timeout
      self.when = when
    }
  }

  public var id: Int?
  public var token: String?
  public var jobInfo: JobInfo?
  public var runnerInfo: RunnerInfo?
  public var variables: [Variable]?
  public var steps: [Step]?

  public init(
    id: Int, token: String, jobInfo: JobInfo, runnerInfo: RunnerInfo, variables: [Variable], steps: [Step]
  ) {
    self.id = id
    self.token = token
    self.jobInfo = jobInfo
    self.runnerInfo = runnerInfo
    self.variables = variables
    self.steps = steps
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    id = try? container.decode(Int.self, forKey: .id)
    token = try? container.decode(String.self, forKey: .token)
    jobInfo = try? container.decode(JobInfo.self, forKey: .jobInfo)
    runnerInfo = try? container.decode(RunnerInfo.self, forKey: .runnerInfo)
    variables = try? container.decode([Variable].self, forKey: .variables)
    steps = try? container.decode([Step].self, forKey: .steps)
  }

  enum CodingKeys: String, CodingKey {
    case id, token, variables, steps
    case jobInfo = "job_info"
    case runnerInfo = "runner_info"
  }

  /// Every value GitLab gave this key, in the payload's order.
  public func values(of key: String) -> [String] {
    (variables ?? []).compactMap { $0.key == key ? $0.value : nil }
  }

  public func encoded() throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var data = try encoder.encode(self)
    data.append(UInt8(ascii: "\n"))
    return data
  }
}
