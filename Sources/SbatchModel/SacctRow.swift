/// One line of `sacct -n -P -o F1,F2,...` (parsable: `|` between fields, no header): the
/// fields by position in the `-o` list. Both the driver's polling (`SacctRecord`) and the
/// report's accounting table read sacct through this, so the line format is read once.
public struct SacctRow: Equatable, Sendable {
  /// The fields in the order asked for; a short line is padded with empty fields.
  public var fields: [String]

  /// `format` is the `-o` list; a line without even the first `minimum` fields is no row.
  public static func parseAll(_ text: String, fieldCount: Int, minimum: Int) -> [SacctRow] {
    text.split(whereSeparator: \.isNewline).compactMap { parse($0, fieldCount: fieldCount, minimum: minimum) }
  }

  public static func parse(_ line: Substring, fieldCount: Int, minimum: Int) -> SacctRow? {
    var fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
    guard fields.count >= minimum, !fields[0].isEmpty else { return nil }
    fields += Array(repeating: "", count: max(0, fieldCount - fields.count))
    return SacctRow(fields: fields)
  }

  /// The job id field (always asked for first): `123`, `123_4`, `123_[5-9%2]`, `123.batch`.
  public var id: String { fields[0] }
  /// A step row (`123.batch`, `123.extern`, `123_4.0`): listed without `-X`.
  public var isStep: Bool { id.contains(".") }

  public subscript(index: Int) -> String { fields[index] }
}
