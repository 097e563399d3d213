import Foundation
import JWTKit
import JobIdentity
import TestSizes
import Testing

/// Each way a forged, stale or borrowed token could get a job run as someone else.
@Suite(.tags(.small)) struct IDTokenTests {
  static let gitlab = try! IDTokenMinter(privateKeyPEM: try! IDTokenMinter.generatePrivateKeyPEM(), keyID: "gitlab")
  static let other = try! IDTokenMinter(privateKeyPEM: try! IDTokenMinter.generatePrivateKeyPEM(), keyID: "gitlab")
  let rules = IDTokenRules(issuer: "https://gitlab.example.com", audience: "slurm", jobID: "42")
  let now = Date()

  func claims(
    issuer: String = "https://gitlab.example.com", audience: [String] = ["slurm"], expires: TimeInterval = 300,
    notBefore: TimeInterval = -5, jobID: String = "42"
  ) -> GitLabClaims {
    GitLabClaims(
      issuer: issuer, audience: audience, expires: now.addingTimeInterval(expires), notBefore: now.addingTimeInterval(notBefore),
      issuedAt: now, jobID: jobID, userLogin: "alice", projectPath: "group/project")
  }

  func refusal(_ token: String) -> String? {
    do {
      _ = try IDTokenVerifier(jwksJSON: IDTokenTests.gitlab.jwksJSON).verify(token, rules: rules, now: now)
      return nil
    } catch {
      return "\(error)"
    }
  }

  @Test func gitlabsTokenForThisJobIsAccepted() throws {
    let verified = try IDTokenVerifier(jwksJSON: IDTokenTests.gitlab.jwksJSON).verify(
      try IDTokenTests.gitlab.mint(claims()), rules: rules, now: now)
    #expect(verified.userLogin == "alice")
    #expect(verified.projectPath == "group/project")
  }

  @Test func aTokenSignedWithAnotherKeyIsRefused() throws {
    #expect(refusal(try IDTokenTests.other.mint(claims()))?.contains("signature does not match") == true)
  }

  @Test func unsignedAndHMACTokensAreRefused() throws {
    let real = try IDTokenTests.gitlab.mint(claims()).split(separator: ".")
    func encode(_ text: String) -> String {
      Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
    }
    let none = "\(encode(#"{"alg":"none","kid":"gitlab"}"#)).\(real[1])."
    #expect(refusal(none)?.contains("signed with 'none'; only RS256") == true)
    // The classic confusion: HS256 keyed with the public key's text.
    let keys = JWTKeyCollection()
    let forged = try blockingSign(keys: keys, secret: IDTokenTests.gitlab.jwksJSON, claims: claims())
    #expect(refusal(forged)?.contains("signed with 'HS256'; only RS256") == true)
  }

  @Test func staleTokensAreRefusedWithinALeeway() throws {
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(expires: -120)))?.contains("expired") == true)
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(expires: -30))) == nil, "60 s of clock skew are allowed")
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(notBefore: 120)))?.contains("not valid before") == true)
  }

  @Test func anotherIssuerAudienceOrJobIsRefused() throws {
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(issuer: "https://evil.example.com")))?.contains("issued by 'https://evil.example.com'") == true)
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(audience: ["vault"])))?.contains("not 'slurm'") == true)
    #expect(refusal(try IDTokenTests.gitlab.mint(claims(jobID: "41")))?.contains("belongs to job 41, not to this job (42)") == true)
    #expect(refusal("not-a-jwt")?.contains("not a JWT") == true)
    #expect(refusal("not.a.jwt")?.contains("header has no algorithm") == true)
  }

  func blockingSign(keys: JWTKeyCollection, secret: String, claims: GitLabClaims) throws -> String {
    let semaphore = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<String, any Error>?
    Task {
      do {
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "gitlab")
        result = .success(try await keys.sign(claims, kid: "gitlab"))
      } catch {
        result = .failure(error)
      }
      semaphore.signal()
    }
    semaphore.wait()
    return try result!.get()
  }
}
