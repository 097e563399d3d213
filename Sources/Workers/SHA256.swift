import Crypto

/// Streaming SHA-256 as lowercase hex, for checksums of downloads and converted inputs.
/// A thin wrapper over swift-crypto (BoringSSL's assembly on Linux): an earlier pure-Swift
/// version hashed at about 190 MB/s, which made it, not the network, the limit of download.
public struct SHA256 {
  private var hasher = Crypto.SHA256()

  public init() {}

  public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
    let handled: Void? = bytes.withContiguousStorageIfAvailable { storage in
      hasher.update(bufferPointer: UnsafeRawBufferPointer(storage))
    }
    if handled == nil { hasher.update(data: Array(bytes)) }
  }

  public mutating func finalize() -> String {
    hasher.finalize().map { byte in
      let hex = String(byte, radix: 16)
      return byte < 16 ? "0" + hex : hex
    }.joined()
  }
}
