#if canImport(FoundationEssentials)
  public import FoundationEssentials
#else
  public import Foundation
#endif
import Dispatch
import Synchronization
public import JWTKit

/// The claims of a GitLab CI ID token (`id_tokens:` in .gitlab-ci.yml) that the driver
/// reads. GitLab writes its own claims as strings (`"job_id": "1234"`); numbers are
/// accepted too, so a token from another issuer fails on its signature, not its shape.
public struct GitLabClaims: JWTPayload, Equatable {
  public var iss: IssuerClaim
  public var aud: AudienceClaim
  public var exp: ExpirationClaim
  public var nbf: NotBeforeClaim?
  public var iat: IssuedAtClaim?
  public var sub: SubjectClaim?
  public var jobID: String
  public var userLogin: String?
  public var projectPath: String?
  public var pipelineID: String?

  public init(
    issuer: String, audience: [String], expires: Date, notBefore: Date?, issuedAt: Date?, jobID: String,
    userLogin: String?, projectPath: String?, pipelineID: String? = nil
  ) {
    iss = IssuerClaim(value: issuer)
    aud = AudienceClaim(value: audience)
    exp = ExpirationClaim(value: expires)
    nbf = notBefore.map { NotBeforeClaim(value: $0) }
    iat = issuedAt.map { IssuedAtClaim(value: $0) }
    sub = projectPath.map { SubjectClaim(value: "project_path:\($0)") }
    self.jobID = jobID
    self.userLogin = userLogin
    self.projectPath = projectPath
    self.pipelineID = pipelineID
  }

  enum CodingKeys: String, CodingKey {
    case iss, aud, exp, nbf, iat, sub
    case jobID = "job_id"
    case userLogin = "user_login"
    case projectPath = "project_path"
    case pipelineID = "pipeline_id"
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    func text(_ key: CodingKeys) throws -> String? {
      if let string = try? container.decode(String.self, forKey: key) { return string }
      if let number = try? container.decode(Int64.self, forKey: key) { return String(number) }
      guard container.contains(key), try container.decodeNil(forKey: key) == false else { return nil }
      throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "\(key.rawValue) is neither text nor a number")
    }
    iss = try container.decode(IssuerClaim.self, forKey: .iss)
    aud = try container.decode(AudienceClaim.self, forKey: .aud)
    exp = try container.decode(ExpirationClaim.self, forKey: .exp)
    nbf = try container.decodeIfPresent(NotBeforeClaim.self, forKey: .nbf)
    iat = try container.decodeIfPresent(IssuedAtClaim.self, forKey: .iat)
    sub = try container.decodeIfPresent(SubjectClaim.self, forKey: .sub)
    guard let job = try text(.jobID) else {
      throw DecodingError.keyNotFound(CodingKeys.jobID, .init(codingPath: [], debugDescription: "no job_id claim"))
    }
    jobID = job
    userLogin = try text(.userLogin)
    projectPath = try text(.projectPath)
    pipelineID = try text(.pipelineID)
  }

  /// The signature is checked by the key collection; the claims against the driver's
  /// rules in `IDTokenVerifier`, where the clock and the expected values are.
  public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Why a token was refused, in words a user can act on.
public struct IDTokenError: Error, Equatable, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// What a token must say to identify a job on this runner.
public struct IDTokenRules: Equatable, Sendable {
  public var issuer: String
  public var audience: String
  /// The job payload's `id`: a token minted for another job is refused.
  public var jobID: String
  /// Clock skew allowed on `exp` and `nbf`.
  public var leewaySeconds: Double = 60
  /// Whether `exp` and `nbf` are checked. GitLab's token lives as long as the job's
  /// timeout; the stages after it (after_script, artifacts on failure, cleanup) must still
  /// know the account of a job that ran out of time. The job id still pins the token.
  public var checksLifetime = true

  public init(issuer: String, audience: String, jobID: String) {
    self.issuer = issuer
    self.audience = audience
    self.jobID = jobID
  }
}

/// Verifies GitLab ID tokens against the instance's signing keys (the JSON GitLab serves at
/// `/oauth/discovery/keys`). RS256 only: GitLab signs with it, and accepting the header's
/// choice is how `alg: none` and HMAC-with-the-public-key forgeries get in.
public struct IDTokenVerifier: Sendable {
  let keys: JWTKeyCollection

  public init(jwksJSON: String) throws {
    let collection = JWTKeyCollection()
    do {
      _ = try blocking { try await collection.add(jwksJSON: jwksJSON) }
    } catch {
      throw IDTokenError("the signing keys are not a JWKS document (\(error))")
    }
    keys = collection
  }

  public func verify(_ token: String, rules: IDTokenRules, now: Date = Date()) throws -> GitLabClaims {
    let algorithm = try Self.headerAlgorithm(token)
    guard algorithm == "RS256" else {
      throw IDTokenError("the ID token is signed with '\(algorithm)'; only RS256 (GitLab's) is accepted")
    }
    let claims: GitLabClaims
    do {
      claims = try blocking { [keys] in try await keys.verify(token, as: GitLabClaims.self) }
    } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
      throw IDTokenError("the ID token's signature does not match GitLab's signing keys")
    } catch {
      throw IDTokenError("the ID token cannot be verified: \(Self.reason(error))")
    }
    guard claims.iss.value == rules.issuer else {
      throw IDTokenError("the ID token was issued by '\(claims.iss.value)', not by this runner's GitLab ('\(rules.issuer)')")
    }
    guard claims.aud.value.contains(rules.audience) else {
      throw IDTokenError("the ID token is for audience \(claims.aud.value.map { "'\($0)'" }.joined(separator: ", ")), not '\(rules.audience)'")
    }
    if rules.checksLifetime {
      guard claims.exp.value.timeIntervalSince(now) > -rules.leewaySeconds else {
        throw IDTokenError("the ID token expired at \(Self.unixTime(claims.exp.value)) (unix time)")
      }
      if let notBefore = claims.nbf?.value, notBefore.timeIntervalSince(now) > rules.leewaySeconds {
        throw IDTokenError("the ID token is not valid before \(Self.unixTime(notBefore)) (unix time)")
      }
    }
    guard claims.jobID == rules.jobID else {
      throw IDTokenError("the ID token belongs to job \(claims.jobID), not to this job (\(rules.jobID))")
    }
    return claims
  }

  /// Whole seconds, without trapping on a signed but absurd date.
  static func unixTime(_ date: Date) -> String {
    let seconds = date.timeIntervalSince1970
    return abs(seconds) < 1e15 ? String(Int64(seconds)) : "\(seconds)"
  }

  /// The header's `alg`, read before the signature is: the one choice never left to it.
  static func headerAlgorithm(_ token: String) throws -> String {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, let header = Base64URL.decode(parts[0]) else {
      throw IDTokenError("the ID token is not a JWT (header.payload.signature)")
    }
    struct Header: Decodable { var alg: String }
    guard let decoded = try? JSONDecoder().decode(Header.self, from: header) else {
      throw IDTokenError("the ID token's header has no algorithm")
    }
    return decoded.alg
  }

  static func reason(_ error: any Error) -> String {
    if let error = error as? JWTError, let reason = error.reason { return reason }
    return "\(error)".split(separator: "\n").first.map(String.init) ?? "unknown error"
  }
}

/// Signs tokens the way GitLab does, for ci-local (which plays GitLab's part) and tests.
public struct IDTokenMinter: Sendable {
  let keys: JWTKeyCollection
  public let keyID: String
  /// The public half as a JWKS document, for the driver's `jwks_file`.
  public let jwksJSON: String

  public init(privateKeyPEM: String, keyID: String = "ci-local") throws {
    let key: Insecure.RSA.PrivateKey
    do {
      key = try Insecure.RSA.PrivateKey(pem: privateKeyPEM)
    } catch {
      throw IDTokenError("not an RSA private key in PEM form (\(error))")
    }
    let collection = JWTKeyCollection()
    _ = try blocking { await collection.add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: keyID)) }
    keys = collection
    self.keyID = keyID
    let (modulus, exponent) = try key.publicKey.getKeyPrimitives()
    jwksJSON = #"{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"\#(keyID)","n":"\#(Base64URL.encode(modulus))","e":"\#(Base64URL.encode(exponent))"}]}"#
  }

  /// A new 2048-bit key in PEM form.
  public static func generatePrivateKeyPEM() throws -> String {
    try Insecure.RSA.PrivateKey(backing: .init(keySize: .bits2048)).pemRepresentation
  }

  public func mint(_ claims: GitLabClaims) throws -> String {
    try blocking { [keys, keyID] in try await keys.sign(claims, kid: JWKIdentifier(string: keyID)) }
  }
}

enum Base64URL {
  static func decode(_ text: Substring) -> Data? {
    var base64 = text.replacing("-", with: "+").replacing("_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: String(base64))
  }

  static func encode(_ data: Data) -> String {
    var text = data.base64EncodedString()
    while text.hasSuffix("=") { text.removeLast() }
    return text.replacing("+", with: "-").replacing("/", with: "_")
  }
}

/// jwt-kit's key collection is an actor; the driver's phases are plain synchronous
/// processes. The work runs on its own dispatch queue (a task executor preference, which
/// the actor follows too), so a caller that blocks here, even on one of Swift's
/// cooperative threads (a test), never waits for a thread it is itself holding.
func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
  let box = ResultBox<T>()
  let done = DispatchSemaphore(value: 0)
  Task(executorPreference: QueueExecutor.shared) {
    let outcome: Result<T, any Error>
    do { outcome = .success(try await work()) } catch { outcome = .failure(error) }
    box.result.withLock { $0 = outcome }
    done.signal()
  }
  done.wait()
  return try box.result.withLock { $0 }!.get()
}

/// The task's result, handed to the waiting thread.
final class ResultBox<T: Sendable>: Sendable {
  let result = Mutex<Result<T, any Error>?>(nil)
}

final class QueueExecutor: TaskExecutor {
  static let shared = QueueExecutor()
  let queue = DispatchQueue(label: "ci-slurm.id-token")

  func enqueue(_ job: consuming ExecutorJob) {
    let job = UnownedJob(job)
    queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
  }
}
