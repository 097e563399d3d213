import Foundation

/// Small self-contained SVG charts (no script, no fonts, no CDN): a figure is one string
/// that can be inlined in a page or saved as a file. The viewBox scales to any width, so
/// the same figure reads on a phone and a desktop.
public struct SVGChart {
  public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var color: String
    public var dashed: Bool

    public init(name: String, points: [(x: Double, y: Double)], color: String, dashed: Bool = false) {
      self.name = name
      self.points = points
      self.color = color
      self.dashed = dashed
    }
  }

  public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

  let width = 640.0
  let height = 380.0
  let left = 70.0
  let right = 20.0
  let top = 40.0
  let bottom = 56.0

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var logX = false
  public var logY = false

  public init(title: String, xLabel: String, yLabel: String, logX: Bool = false, logY: Bool = false) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.logX = logX
    self.logY = logY
  }

  /// Lines (with markers when there are few points), an optional shaded band, a legend.
  public func lines(_ series: [Series], band: (low: Double, high: Double, label: String)? = nil) -> String {
    var xs = series.flatMap { $0.points.map(\.x) }
    var ys = series.flatMap { $0.points.map(\.y) }
    if let band { ys += [band.low, band.high] }
    if logX { xs = xs.filter { $0 > 0 } }
    if logY { ys = ys.filter { $0 > 0 } }
    let xAxis = Axis(values: xs, log: logX, from: left, to: width - right)
    let yAxis = Axis(values: ys, log: logY, from: height - bottom, to: top)
    var body = frame(xAxis, yAxis)
    if let band {
      let y1 = yAxis.position(band.high)
      let y2 = yAxis.position(band.low)
      body += "<rect x=\"\(f(left))\" y=\"\(f(y1))\" width=\"\(f(width - left - right))\" height=\"\(f(max(y2 - y1, 0.5)))\" fill=\"#1f77b4\" fill-opacity=\"0.12\"><title>\(escape(band.label))</title></rect>\n"
    }
    for line in series {
      let points = line.points.filter { (!logX || $0.x > 0) && (!logY || $0.y > 0) }
      guard !points.isEmpty else { continue }
      let path = points.map { "\(f(xAxis.position($0.x))),\(f(yAxis.position($0.y)))" }.joined(separator: " ")
      body += "<polyline class=\"series\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"6 4\"" : "") points=\"\(path)\"><title>\(escape(line.name))</title></polyline>\n"
      if points.count <= 30 {
        for point in points {
          body += "<circle cx=\"\(f(xAxis.position(point.x)))\" cy=\"\(f(yAxis.position(point.y)))\" r=\"3.5\" fill=\"\(line.color)\"><title>\(escape(line.name)): \(number(point.x)), \(number(point.y))</title></circle>\n"
        }
      }
    }
    let key = legend(series.map { ($0.name, $0.color, $0.dashed) } + (band.map { [($0.label, "#1f77b4", false)] } ?? []), bandLast: band != nil)
    return document(body + key.svg, extraHeight: key.height)
  }

  /// A histogram of `values` in `bins` equal bins between their min and max.
  public func histogram(_ values: [Double], bins: Int, color: String = "#1f77b4") -> String {
    let low = values.min() ?? 0
    var high = values.max() ?? 1
    if high <= low { high = low + 1e-12 + abs(low) * 1e-9 }
    let count = max(1, bins)
    var counts = [Int](repeating: 0, count: count)
    for value in values { counts[min(count - 1, Int((value - low) / (high - low) * Double(count)))] += 1 }
    let xAxis = Axis(values: [low, high], log: false, from: left, to: width - right, pad: false)
    let yAxis = Axis(values: [0, Double(counts.max() ?? 1)], log: false, from: height - bottom, to: top, pad: false)
    var body = frame(xAxis, yAxis)
    for (index, value) in counts.enumerated() where value > 0 {
      let x0 = xAxis.position(low + (high - low) * Double(index) / Double(count))
      let x1 = xAxis.position(low + (high - low) * Double(index + 1) / Double(count))
      let y = yAxis.position(Double(value))
      body += "<rect class=\"bar\" x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(max(x1 - x0 - 1, 0.5)))\" height=\"\(f(height - bottom - y))\" fill=\"\(color)\"><title>\(value) in [\(number(low + (high - low) * Double(index) / Double(count))), \(number(low + (high - low) * Double(index + 1) / Double(count))))</title></rect>\n"
    }
    return document(body)
  }

  // MARK: - drawing

  func document(_ body: String, extraHeight: Double = 0) -> String {
    """
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height + extraHeight))" role="img" aria-label="\(escape(title))" style="width:100%;height:auto;font-family:system-ui,sans-serif">
    <title>\(escape(title))</title>
    <rect width="100%" height="100%" fill="#fff"/>
    <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="16" font-weight="600">\(escape(title))</text>
    \(body)</svg>
    """
  }

  func frame(_ x: Axis, _ y: Axis) -> String {
    var out = ""
    for tick in y.ticks() {
      let position = y.position(tick)
      out += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(position))\" y2=\"\(f(position))\" stroke=\"#e5e5e5\"/>"
      out += "<text x=\"\(f(left - 6))\" y=\"\(f(position + 4))\" text-anchor=\"end\" font-size=\"12\">\(y.label(tick))</text>\n"
    }
    for tick in x.ticks() {
      let position = x.position(tick)
      out += "<line x1=\"\(f(position))\" x2=\"\(f(position))\" y1=\"\(f(height - bottom))\" y2=\"\(f(height - bottom + 5))\" stroke=\"#333\"/>"
      out += "<text x=\"\(f(position))\" y=\"\(f(height - bottom + 19))\" text-anchor=\"middle\" font-size=\"12\">\(x.label(tick))</text>\n"
    }
    out += "<line x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(height - bottom))\" y2=\"\(f(height - bottom))\" stroke=\"#333\"/>"
    out += "<line x1=\"\(f(left))\" x2=\"\(f(left))\" y1=\"\(f(top))\" y2=\"\(f(height - bottom))\" stroke=\"#333\"/>\n"
    out += "<text x=\"\(f((left + width - right) / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\" font-size=\"13\">\(escape(xLabel))</text>\n"
    out += "<text transform=\"translate(16 \(f((top + height - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escape(yLabel))</text>\n"
    return out
  }

  /// Below the x-axis label, in one row (wrapping), so it never covers the data.
  func legend(_ entries: [(String, String, Bool)], bandLast: Bool) -> (svg: String, height: Double) {
    guard entries.count > 1 || bandLast else { return ("", 0) }
    var out = ""
    var x = left
    var y = height + 8
    for (index, entry) in entries.enumerated() {
      let entryWidth = 40 + Double(entry.0.count) * 7
      if x + entryWidth > width - right, x > left {
        x = left
        y += 20
      }
      if bandLast && index == entries.count - 1 {
        out += "<rect x=\"\(f(x))\" y=\"\(f(y - 6))\" width=\"22\" height=\"10\" fill=\"#1f77b4\" fill-opacity=\"0.12\"/>"
      } else {
        out += "<line x1=\"\(f(x))\" x2=\"\(f(x + 22))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"\(entry.1)\" stroke-width=\"2\"\(entry.2 ? " stroke-dasharray=\"6 4\"" : "")/>"
      }
      out += "<text x=\"\(f(x + 28))\" y=\"\(f(y + 4))\" font-size=\"12\">\(escape(entry.0))</text>\n"
      x += entryWidth
    }
    return (out, y - height + 12)
  }

  func f(_ value: Double) -> String { String(format: "%.1f", value) }
}

/// One axis: data to pixels (linear or log10), and readable tick values.
struct Axis {
  var low: Double
  var high: Double
  var log: Bool
  var from: Double
  var to: Double

  init(values: [Double], log: Bool, from: Double, to: Double, pad: Bool = true) {
    var low = values.min() ?? 0
    var high = values.max() ?? 1
    if log {
      low = Foundation.log10(max(low, 1e-300))
      high = Foundation.log10(max(high, 1e-300))
    }
    if high - low < 1e-12 {
      let spread = max(abs(low) * 0.05, 1e-9)
      low -= spread
      high += spread
    } else if pad {
      let margin = (high - low) * 0.05
      low -= margin
      high += margin
    }
    self.low = low
    self.high = high
    self.log = log
    self.from = from
    self.to = to
  }

  func position(_ value: Double) -> Double {
    let v = log ? Foundation.log10(max(value, 1e-300)) : value
    return from + (v - low) / (high - low) * (to - from)
  }

  func ticks() -> [Double] {
    if log {
      // 1-2-5 (or every digit, or every decade) so a range under one decade still has ticks.
      var candidates: [Double] = []
      for exponent in Int(low.rounded(.down))...Int(high.rounded(.up)) {
        for digit in 1...9 {
          let value = Double(digit) * pow(10, Double(exponent))
          let position = Foundation.log10(value)
          if position >= low - 1e-9, position <= high + 1e-9 { candidates.append(value) }
        }
      }
      for keep in [Set(1...9), Set([1, 2, 5]), Set([1])] {
        let chosen = candidates.filter { keep.contains(Int(($0 / pow(10, Foundation.log10($0).rounded(.down))).rounded())) }
        if chosen.count <= 8 && chosen.count >= 2 || keep == Set([1]) { return chosen.isEmpty ? [pow(10, (low + high) / 2)] : chosen }
      }
      return candidates
    }
    let step = self.step
    var tick = (low / step).rounded(.up) * step
    var ticks: [Double] = []
    while tick <= high + step * 1e-9, ticks.count < 12 {
      ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
      tick += step
    }
    return ticks
  }

  var step: Double {
    let raw = (high - low) / 5
    let magnitude = pow(10, (Foundation.log10(raw)).rounded(.down))
    return [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
  }

  /// Tick text with as many decimals as the step needs (0.99994 and 0.99996 stay apart).
  func label(_ value: Double) -> String {
    if log || value == 0 { return number(value) }
    let magnitude = max(abs(low), abs(high))
    if magnitude >= 1e5 || magnitude < 1e-3 { return String(format: "%.3g", value) }
    let decimals = max(0, Int(-Foundation.log10(step).rounded(.down)) + (step / pow(10, Foundation.log10(step).rounded(.down)) == 2.5 ? 1 : 0))
    return String(format: "%.\(min(decimals, 10))f", value)
  }
}

/// A number as a person reads it on an axis or in a table: few digits, scientific when tiny.
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

/// XML/HTML text escaping for labels and titles.
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
