/// Splits a line into words the way a POSIX shell's quoting does, without being a shell:
/// nothing is expanded or executed. `$(...)`, backticks, `;`, `|`, `&`, `>` and `*` are plain
/// characters of a word. This is how SCHEDULER_PARAMETERS becomes sbatch's argv.
public enum ShellWords {
  public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
  }

  public static func split(_ line: String) throws -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var iterator = Array(line.unicodeScalars).makeIterator()
    enum Quote { case none, single, double }
    var quote = Quote.none
    var quoteStartedAt = 0
    var position = 0
    while let scalar = iterator.next() {
      position += 1
      switch quote {
      case .single:
        if scalar == "'" { quote = .none } else { current.unicodeScalars.append(scalar) }
      case .double:
        if scalar == "\"" {
          quote = .none
        } else if scalar == "\\" {
          guard let next = iterator.next() else {
            throw ParseError(message: "unterminated double quote (opened at character \(quoteStartedAt))")
          }
          position += 1
          // Inside double quotes a backslash escapes only these; elsewhere it stays.
          if next == "\"" || next == "\\" || next == "$" || next == "`" {
            current.unicodeScalars.append(next)
          } else if next == "\n" {
            // line continuation
          } else {
            current.unicodeScalars.append("\\")
            current.unicodeScalars.append(next)
          }
        } else {
          current.unicodeScalars.append(scalar)
        }
      case .none:
        switch scalar {
        case " ", "\t", "\n", "\r":
          if inWord {
            words.append(current)
            current = ""
            inWord = false
          }
        case "'":
          quote = .single
          quoteStartedAt = position
          inWord = true
        case "\"":
          quote = .double
          quoteStartedAt = position
          inWord = true
        case "\\":
          guard let next = iterator.next() else {
            throw ParseError(message: "a trailing backslash escapes nothing")
          }
          position += 1
          if next != "\n" {
            current.unicodeScalars.append(next)
            inWord = true
          }
        default:
          current.unicodeScalars.append(scalar)
          inWord = true
        }
      }
    }
    switch quote {
    case .single:
      throw ParseError(message: "unterminated single quote (opened at character \(quoteStartedAt))")
    case .double:
      throw ParseError(message: "unterminated double quote (opened at character \(quoteStartedAt))")
    case .none:
      break
    }
    if inWord { words.append(current) }
    return words
  }

  /// Quotes one word so a shell reads it back unchanged (for display and `explain`).
  public static func quote(_ word: String) -> String {
    if !word.isEmpty,
      word.unicodeScalars.allSatisfy({
        ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
          || "-_=./:,%@+".unicodeScalars.contains($0)
      })
    {
      return word
    }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }
}

extension String {
  fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
    split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
