#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

#if canImport(Glibc)
  import Glibc
#endif

/// Errors from Foundation, as one line a person can act on: the path and the reason, not
/// `Error Domain=NSCocoaErrorDomain Code=512 "(null)" UserInfo={...}`.
public enum ErrorText {
  public static func oneLine(_ error: any Error) -> String {
    if let failure = error as? DriverFailure, case .system(let message) = failure { return message }
    if let cocoa = error as? CocoaError {
      let reason = (cocoa.underlying as? POSIXError).map { String(cString: strerror($0.code.rawValue)) } ?? "error \(cocoa.code.rawValue)"
      return cocoa.filePath.map { "\($0): \(reason)" } ?? reason
    }
    let text = "\(error)"
    return text.split(separator: "\n").first.map(String.init) ?? text
  }
}
