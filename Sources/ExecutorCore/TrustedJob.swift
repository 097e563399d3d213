public import ChildProcesses
public import CustomExecutorAPI
import JobIdentity
#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
#if canImport(Glibc)
  import Glibc
#endif

/// What a phase may believe about its CI job, from inputs no CI user writes: the runner's
/// job payload (JOB_RESPONSE_FILE) and, for run_as, an ID token GitLab signed. Resolved by
/// the privileged part and handed to the part that runs as the account.
public struct TrustedJob: Codable, Equatable, Sendable {
  /// The CI job id, digits only (it names paths).
  public var jobID: String
  /// The local account the job runs as (run_as); nil: the runner's own account.
  public var account: Credentials?
  /// Who GitLab says started the job (token's user_login or project_path), for notes.
  public var identity: String?
  /// GitLab's job timeout from the payload (`runner_info.timeout`), never a CI variable.
  public var timeoutSeconds: Int?
  /// When the runner wrote the payload: it starts the CI job's clock just before, so this
  /// is the earliest moment the driver can know of the job (nil: no payload).
  public var startedAt: Date?

  public init(
    jobID: String, account: Credentials? = nil, identity: String? = nil, timeoutSeconds: Int? = nil, startedAt: Date? = nil
  ) {
    self.jobID = jobID
    self.account = account
    self.identity = identity
    self.timeoutSeconds = timeoutSeconds
    self.startedAt = startedAt
  }

  /// `checksTokenLifetime`: config and prepare refuse an expired token; the later stages
  /// of a job that got that far still resolve its account (`IDTokenRules`).
  public static func resolve(
    environment: RunnerEnvironment, settings: DriverSettings, checksTokenLifetime: Bool = true, now: Date = Date()
  ) throws -> TrustedJob {
    let asRoot = geteuid() == 0
    let (payload, written) = try loadPayload(environment, asRoot: asRoot)
    let jobID: String
    if let id = payload?.id, id > 0 {
      jobID = String(id)
    } else if settings.runAs.mode != .off {
      throw DriverFailure.system("run_as needs the runner's job payload (JOB_RESPONSE_FILE with the job's id); run this driver from gitlab-runner's custom executor (or ci-local)")
    } else {
      jobID = try fallbackJobID(environment)
    }
    let timeout = payload?.runnerInfo?.timeout.flatMap { $0 > 0 ? $0 : nil }
    guard settings.runAs.mode != .off else { return TrustedJob(jobID: jobID, timeoutSeconds: timeout, startedAt: written) }
    guard asRoot else {
      throw DriverFailure.system("run_as.mode is '\(settings.runAs.mode.rawValue)' but the runner does not run as root; turn run_as off or run gitlab-runner as root")
    }
    let (account, identity) = try resolveAccount(
      payload: payload!, jobID: jobID, settings: settings.runAs, checksLifetime: checksTokenLifetime, now: now)
    return TrustedJob(jobID: jobID, account: account, identity: identity, timeoutSeconds: timeout, startedAt: written)
  }

  /// The payload and when it was written.
  static func loadPayload(_ environment: RunnerEnvironment, asRoot: Bool) throws -> (JobPayload?, Date?) {
    guard let path = environment.jobResponseFile else { return (nil, nil) }
    let data = try TrustedFile.read(path, what: "the job payload (JOB_RESPONSE_FILE)", asRoot: asRoot)
    guard let payload = try? JSONDecoder().decode(JobPayload.self, from: data) else {
      throw DriverFailure.system("the job payload \(path) is not the runner's JSON")
    }
    var info = stat()
    let written = stat(path, &info) == 0
      ? Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9) : nil
    return (payload, written)
  }

  /// Without a payload (a phase run by hand), the job id the environment gives.
  static func fallbackJobID(_ environment: RunnerEnvironment) throws -> String {
    guard let id = environment.job("CI_JOB_ID") else {
      throw DriverFailure.system(
        "CUSTOM_ENV_CI_JOB_ID is not set and JOB_RESPONSE_FILE has no job id: run this driver from gitlab-runner's custom executor (or ci-local)"
      )
    }
    guard !id.isEmpty, id.count <= 20, id.allSatisfy({ $0.isASCII && $0.isNumber }) else {
      throw DriverFailure.system("CUSTOM_ENV_CI_JOB_ID is '\(id.prefix(40))', not a job number")
    }
    return id
  }

  /// The account from the job's ID token: signature, issuer, audience, lifetime and job id
  /// checked, then the token's user (or project) mapped through run_as.accounts. A job's
  /// own variables cannot stand in for a signature.
  static func resolveAccount(
    payload: JobPayload, jobID: String, settings runAs: DriverSettings.RunAs, checksLifetime: Bool, now: Date
  ) throws -> (Credentials, String) {
    let variable = runAs.tokenVariable
    let tokens = payload.values(of: variable).filter { !$0.isEmpty }
    guard !tokens.isEmpty else {
      throw DriverFailure.build(
        exitCode: 1,
        message: "run_as: this job has no ID token in \(variable); add `id_tokens: {\(variable): {aud: \"\(runAs.audience)\"}}` to the job (docs/gitlab.md)")
    }
    let keysText: String
    do {
      keysText = String(decoding: try TrustedFile.read(runAs.jwksFile, what: "run_as.jwks_file"), as: UTF8.self)
    }
    let verifier: IDTokenVerifier
    do {
      verifier = try IDTokenVerifier(jwksJSON: keysText)
    } catch {
      throw DriverFailure.system("run_as.jwks_file \(runAs.jwksFile): \(error)")
    }
    var rules = IDTokenRules(issuer: runAs.issuer, audience: runAs.audience, jobID: jobID)
    rules.checksLifetime = checksLifetime
    // A job may define a variable of the same name; only a value GitLab signed for this
    // very job passes, so trying each in turn lets no one else's token in.
    var claims: GitLabClaims?
    var firstError: (any Error)?
    for token in tokens {
      do {
        claims = try verifier.verify(token, rules: rules, now: now)
        break
      } catch {
        firstError = firstError ?? error
      }
    }
    guard let claims else {
      throw DriverFailure.build(exitCode: 1, message: "run_as: refused the job's ID token (\(variable)): \(firstError.map { "\($0)" } ?? "no token")")
    }
    let identity: String?
    let what: String
    switch runAs.mode {
    case .user: (identity, what) = (claims.userLogin, "GitLab user")
    case .project: (identity, what) = (claims.projectPath, "project")
    case .off: preconditionFailure("run_as is off")
    }
    guard let identity, !identity.isEmpty else {
      throw DriverFailure.build(exitCode: 1, message: "run_as: the ID token names no \(runAs.mode == .user ? "user_login" : "project_path")")
    }
    guard let local = runAs.accounts[identity] else {
      throw DriverFailure.build(exitCode: 1, message: "\(what) '\(identity)' is not mapped to a local account on this runner (run_as.accounts); ask the cluster admin")
    }
    guard let account = Credentials.of(account: local) else {
      throw DriverFailure.system("run_as maps \(what) '\(identity)' to '\(local)', which is not an account on this machine")
    }
    guard account.uid != 0 else {
      throw DriverFailure.build(exitCode: 1, message: "run_as maps \(what) '\(identity)' to '\(local)' (uid 0): CI jobs never run as root")
    }
    return (account, identity)
  }
}
