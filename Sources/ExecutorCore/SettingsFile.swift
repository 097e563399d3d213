/// A small reader for the TOML the admin settings use: `[tables]`, `key = value` with
/// strings ("basic" and 'literal'), integers, floats, booleans and one-line arrays of those,
/// and `#` comments. Anything else is an error with its line number, never a guess.
///
/// Kept rather than TOMLKit 0.6.0 (which resolves here): TOMLKit links Foundation proper,
/// and the driver's four executables use FoundationEssentials to stay small (no ICU); the
/// settings need only this subset.
public enum SettingsFile {
  public enum Value: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([Value])

    var typeName: String {
      switch self {
      case .string: return "a string"
      case .integer: return "an integer"
      case .float: return "a number"
      case .boolean: return "true or false"
      case .array: return "an array"
      }
    }
  }

  public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
  }

  /// Keys are dotted paths: `caps.max_cpus`. Each value keeps its line for error messages.
  public static func parse(_ text: String) throws -> [String: (value: Value, line: Int)] {
    var result: [String: (value: Value, line: Int)] = [:]
    var table = ""
    for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let number = offset + 1
      var scanner = Scanner(Array(rawLine.unicodeScalars), line: number)
      scanner.skipBlanks()
      if scanner.atEndOrComment { continue }
      if scanner.peek == "[" {
        scanner.advance()
        if scanner.peek == "[" { throw ParseError(line: number, message: "arrays of tables ([[...]]) are not used in these settings") }
        let name = try scanner.readKey()
        scanner.skipBlanks()
        guard scanner.peek == "]" else { throw ParseError(line: number, message: "expected ] after the table name") }
        scanner.advance()
        scanner.skipBlanks()
        guard scanner.atEndOrComment else { throw ParseError(line: number, message: "unexpected text after [\(name)]") }
        table = name
        continue
      }
      let key = try scanner.readKey()
      scanner.skipBlanks()
      guard scanner.peek == "=" else { throw ParseError(line: number, message: "expected = after '\(key)'") }
      scanner.advance()
      scanner.skipBlanks()
      let value = try scanner.readValue()
      scanner.skipBlanks()
      guard scanner.atEndOrComment else {
        throw ParseError(line: number, message: "unexpected text after the value of '\(key)'")
      }
      let path = table.isEmpty ? key : "\(table).\(key)"
      if result[path] != nil { throw ParseError(line: number, message: "'\(path)' is set twice") }
      result[path] = (value, number)
    }
    return result
  }

  struct Scanner {
    var scalars: [Unicode.Scalar]
    var index = 0
    let line: Int

    init(_ scalars: [Unicode.Scalar], line: Int) {
      // A trailing CR from a file written on Windows is not part of the line.
      var scalars = scalars
      if scalars.last == "\r" { scalars.removeLast() }
      self.scalars = scalars
      self.line = line
    }

    var peek: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }
    var atEndOrComment: Bool { peek == nil || peek == "#" }
    mutating func advance() { index += 1 }
    mutating func skipBlanks() { while peek == " " || peek == "\t" { advance() } }

    func fail(_ message: String) -> ParseError { ParseError(line: line, message: message) }

    mutating func readKey() throws -> String {
      var parts: [String] = []
      repeat {
        skipBlanks()
        var part = ""
        if peek == "\"" {
          part = try readBasicString()
        } else {
          while let c = peek, ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-" {
            part.unicodeScalars.append(c)
            advance()
          }
        }
        guard !part.isEmpty else { throw fail("expected a key (letters, digits, _ and -)") }
        parts.append(part)
        skipBlanks()
        if peek == "." { advance() } else { break }
      } while true
      return parts.joined(separator: ".")
    }

    mutating func readValue() throws -> Value {
      guard let c = peek else { throw fail("a value is missing after =") }
      switch c {
      case "\"": return .string(try readBasicString())
      case "'":
        advance()
        var text = ""
        while let c = peek, c != "'" {
          text.unicodeScalars.append(c)
          advance()
        }
        guard peek == "'" else { throw fail("unterminated literal string") }
        advance()
        return .string(text)
      case "[":
        advance()
        var items: [Value] = []
        while true {
          skipBlanks()
          if peek == "]" {
            advance()
            return .array(items)
          }
          guard peek != nil, peek != "#" else { throw fail("unterminated array (arrays must fit on one line)") }
          items.append(try readValue())
          skipBlanks()
          if peek == "," { advance() } else if peek != "]" { throw fail("expected , or ] in the array") }
        }
      default:
        var word = ""
        while let c = peek, c != " ", c != "\t", c != ",", c != "]", c != "#" {
          word.unicodeScalars.append(c)
          advance()
        }
        if word == "true" { return .boolean(true) }
        if word == "false" { return .boolean(false) }
        let digits = word.replacingUnderscores()
        if let integer = Int(digits) { return .integer(integer) }
        if digits.contains("."), let float = Double(digits), float.isFinite { return .float(float) }
        throw fail("'\(word)' is not a value (quote strings: \"...\")")
      }
    }

    mutating func readBasicString() throws -> String {
      advance()
      var text = ""
      while let c = peek, c != "\"" {
        advance()
        if c == "\\" {
          guard let escaped = peek else { break }
          advance()
          switch escaped {
          case "n": text += "\n"
          case "t": text += "\t"
          case "\"": text += "\""
          case "\\": text += "\\"
          default: throw fail("unknown escape \\\(escaped) in a string")
          }
        } else {
          text.unicodeScalars.append(c)
        }
      }
      guard peek == "\"" else { throw fail("unterminated string") }
      advance()
      return text
    }
  }
}

extension String {
  fileprivate func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
