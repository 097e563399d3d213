// FoundationEssentials where there is one: the driver's processes stay small (no ICU).
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
