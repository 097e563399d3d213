public import Foundation
import Workers

/// Plotly figures as JSON objects (`{"data": [...], "layout": {...}}`), the format plotly.js
/// renders and plotly.py's `fig.to_json()` writes: the page draws them with plotly.js, so
/// hover, zoom/pan, legend toggles, dropdowns and sliders come from a kept library.
public enum Plotly {
  public typealias Figure = [String: Any]

  /// The palette (plotly's default, colour-blind friendlier than random picks).
  public static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

  /// A layout every figure of ours starts from: readable type at 412 px (14 px text, not
  /// a scaled-down picture), the legend above the plot so it never squeezes a phone's
  /// plot area, and margins that grow to fit tick labels (no cut-off last tick).
  public static func layout(title: String, x: String, y: String, height: Int = 460) -> [String: Any] {
    [
      // The title at the very top (two lines at most, `<br>`), the legend under it.
      "title": ["text": title, "x": 0, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top", "pad": ["t": 12, "l": 4], "font": ["size": 16]],
      "font": ["size": 14, "family": "system-ui, -apple-system, Segoe UI, sans-serif"],
      "height": height,
      "margin": ["l": 60, "r": 16, "t": 80, "b": 56],
      "legend": ["orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"],
      "hovermode": "closest",
      "xaxis": ["title": ["text": x], "automargin": true],
      "yaxis": ["title": ["text": y], "automargin": true],
    ]
  }

  /// JSON text for a figure; NaN and infinities (not JSON) are refused, not written.
  public static func json(_ figure: Figure) throws -> Data {
    guard JSONSerialization.isValidJSONObject(figure) else { throw WorkerError("a figure holds a value JSON cannot (NaN, infinity?)") }
    do {
      return try JSONSerialization.data(withJSONObject: figure, options: [.sortedKeys])
    } catch {
      throw WorkerError("a figure is not valid JSON: \(error.localizedDescription)")
    }
  }

  /// Tick values for a log axis over [low, high]: 1, 2 and 5 times the powers of ten
  /// (only the powers when the range spans more than three decades).
  public static func logTicks(low: Double, high: Double) -> [Double] {
    guard low > 0, high >= low else { return [] }
    let (first, last) = (Int(floor(log10(low))), Int(ceil(log10(high))))
    let multiples: [Double] = last - first > 3 ? [1] : [1, 2, 5]
    return (first...last).flatMap { power in multiples.map { $0 * pow(10, Double(power)) } }.filter { $0 >= low / 1.5 && $0 <= high * 1.5 }
  }

  /// Histogram bins on round edges: a 1-2-5 width near `span / bins`, edges at its
  /// multiples, so each edge prints exactly with the width's decimals ("[0.99990,
  /// 0.99992)", never two edges that read alike).
  public static func bins(_ values: [Double], target: Int) -> (edges: [Double], labels: [String]) {
    let low = values.min() ?? 0, high = values.max() ?? 1
    let raw = high > low ? (high - low) / Double(max(1, target)) : max(abs(low), 1e-12) * 1e-6
    let magnitude = pow(10, floor(log10(raw)))
    let width = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * (1 - 1e-9) }!
    // The small slack keeps a value that sits on an edge (0.9999 / 2e-5) in its own bin.
    let first = floor(low / width + 1e-9)
    let count = max(1, Int(ceil((high - first * width) / width - 1e-9)))
    let edges = (0...count).map { (first + Double($0)) * width }
    let decimals = max(0, -Int(floor(log10(width) + 1e-9)))
    return (edges, edges.map { String(format: "%.\(decimals)f", $0) })
  }
}

/// Column names as people read them: `heart_rate_bpm` -> "heart rate (bpm)",
/// `skin_temp_c` -> "skin temperature (°C)", `commit_ref_name` is never shown raw.
public enum Labels {
  static let units = [
    "s": "s", "ms": "ms", "min": "min", "h": "h", "hz": "Hz", "bpm": "bpm", "c": "°C", "k": "K", "f": "°F", "pct": "%",
    "percent": "%", "mm": "mm", "cm": "cm", "m": "m", "kg": "kg", "g": "g", "mmhg": "mmHg", "us": "µs",
  ]
  static let words = ["temp": "temperature", "hr": "heart rate", "resp": "respiration", "eda": "electrodermal activity"]

  public static func column(_ name: String) -> String {
    var parts = name.split(whereSeparator: { $0 == "_" || $0 == " " || $0 == "-" }).map { $0.lowercased() }
    guard !parts.isEmpty else { return name }
    var unit: String? = nil
    if parts.count > 1, let last = parts.last, let known = units[last] {
      unit = known
      parts.removeLast()
    }
    let text = parts.map { words[$0] ?? $0 }.joined(separator: " ")
    return unit.map { "\(text) (\($0))" } ?? text
  }

  /// The pipeline's variables as a reader names them.
  public static let pipeline: [(variable: String, label: String)] = [
    ("CI_PIPELINE_ID", "Pipeline"), ("CI_PIPELINE_URL", "Pipeline page"), ("CI_PROJECT_PATH", "Project"),
    ("CI_COMMIT_REF_NAME", "Branch or tag"), ("CI_COMMIT_SHORT_SHA", "Commit"), ("CI_PIPELINE_SOURCE", "Started by"),
  ]
}

/// A number for a table cell or a readout: 4 significant digits, no trailing zeros.
public func number(_ value: Double) -> String {
  if value == 0 { return "0" }
  let magnitude = abs(value)
  if magnitude >= 1e5 || magnitude < 1e-3 { return String(format: "%.3g", value) }
  if magnitude >= 100 { return String(format: "%.0f", value) }
  var text = String(format: "%.4g", value)
  if text.contains(".") && !text.contains("e") {
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
  }
  return text
}

/// Text for HTML and SVG (element content and attribute values).
public func escape(_ text: String) -> String {
  var out = ""
  for character in text {
    switch character {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    default: out.append(character)
    }
  }
  return out
}
