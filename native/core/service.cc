#include "service.h"

#include <cstring>
#include <ctime>

namespace ps {

namespace {

constexpr char kFirstPrintable = ' ';
constexpr uint32_t kPrintables = 95;  // ' ' (32) to '~' (126)

// A tiny appender: snprintf is not async-signal-safe (locale, and in glibc malloc for some
// conversions), and these messages run in forked children.
struct Text {
  char* out;
  size_t cap;
  size_t len = 0;

  void put(char c) {
    if (len < cap) out[len] = c;
    ++len;
  }
  void put(const char* s) {
    while (*s != '\0') put(*s++);
  }
  // `value` in decimal, at least `width` digits (zero-padded).
  void number(int64_t value, int width) {
    char digits[24];
    int n = 0;
    uint64_t v = value < 0 ? static_cast<uint64_t>(-value) : static_cast<uint64_t>(value);
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n < width) digits[n++] = '0';
    if (value < 0) put('-');
    while (n > 0) put(digits[--n]);
  }
  size_t done() const { return len < cap ? len : cap; }
};

// Howard Hinnant's days_from_civil inverse: the proleptic Gregorian date of a day count since
// 1970-01-01. Plain integer arithmetic, so no time-zone database (gmtime_r) is touched.
void civil_from_days(int64_t days, int64_t& year, int& month, int& day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;                                    // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  year = yoe + era * 400 + (month <= 2 ? 1 : 0);
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0); }

int64_t wall_clock_seconds() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);  // async-signal-safe (signal-safety(7))
  return static_cast<int64_t>(now.tv_sec);
}

}  // namespace

ServiceShape service_shape(Handler handler) {
  switch (handler) {
    case Handler::Echo:
    case Handler::Upper:
      return {true, true, false, false, false};
    case Handler::Discard:
      return {true, false, false, false, false};
    case Handler::Chargen:
      return {true, false, false, true, false};
    case Handler::Daytime:
    case Handler::Time:
      return {false, false, true, false, false};
    case Handler::Rpc:
      return {true, false, false, false, true};
    case Handler::Exec:
      break;
  }
  return {false, false, false, false, false};
}

void apply_handler(Handler handler, char* data, size_t n) {
  if (handler != Handler::Upper) return;  // echo: the bytes go back as they came
  for (size_t i = 0; i < n; ++i) {
    if (data[i] >= 'a' && data[i] <= 'z') data[i] = static_cast<char>(data[i] - 'a' + 'A');
  }
}

size_t daytime_text(int64_t unix_seconds, char* out, size_t cap) {
  static const char* const kWeekdays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  static const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                        "July",    "August",   "September", "October", "November", "December"};
  const int64_t days = floor_div(unix_seconds, 86400);
  const int64_t secs = unix_seconds - days * 86400;
  int64_t year = 0;
  int month = 0;
  int day = 0;
  civil_from_days(days, year, month, day);
  const int64_t weekday = ((days % 7) + 7 + 4) % 7;  // 1970-01-01 was a Thursday
  Text t{out, cap};
  t.put(kWeekdays[weekday]);
  t.put(", ");
  t.put(kMonths[month - 1]);
  t.put(' ');
  t.number(day, 1);
  t.put(", ");
  t.number(year, 4);
  t.put(' ');
  t.number(secs / 3600, 2);
  t.put(':');
  t.number(secs / 60 % 60, 2);
  t.put(':');
  t.number(secs % 60, 2);
  t.put("-UTC\r\n");
  return t.done();
}

size_t time_bytes(int64_t unix_seconds, char* out, size_t cap) {
  if (cap < 4) return 0;
  const auto since_1900 = static_cast<uint32_t>(static_cast<uint64_t>(unix_seconds + kSecondsFrom1900To1970));
  out[0] = static_cast<char>(since_1900 >> 24);
  out[1] = static_cast<char>(since_1900 >> 16);
  out[2] = static_cast<char>(since_1900 >> 8);
  out[3] = static_cast<char>(since_1900);
  return 4;
}

size_t service_greeting(Handler handler, char* out, size_t cap) {
  switch (handler) {
    case Handler::Daytime:
      return daytime_text(wall_clock_seconds(), out, cap);
    case Handler::Time:
      return time_bytes(wall_clock_seconds(), out, cap);
    default:
      return 0;
  }
}

namespace {

// One whole cycle of the stream (95 lines), computed at compile time: filling is then a copy.
struct ChargenCycle {
  char bytes[kChargenCycleBytes];
  constexpr ChargenCycle() : bytes() {
    for (uint32_t line = 0; line < kPrintables; ++line) {
      for (uint32_t col = 0; col < kChargenLineChars; ++col) {
        bytes[line * kChargenLineBytes + col] = static_cast<char>(kFirstPrintable + (line + col) % kPrintables);
      }
      bytes[line * kChargenLineBytes + kChargenLineChars] = '\r';
      bytes[line * kChargenLineBytes + kChargenLineChars + 1] = '\n';
    }
  }
};
constexpr ChargenCycle kChargen{};

}  // namespace

void chargen_fill(const ChargenCursor& cursor, char* out, size_t n) {
  size_t pos = cursor.pos;
  while (n > 0) {
    size_t run = kChargenCycleBytes - pos;
    if (run > n) run = n;
    memcpy(out, kChargen.bytes + pos, run);  // memcpy is async-signal-safe (POSIX.1-2024)
    out += run;
    n -= run;
    pos = 0;
  }
}

RpcRequest::Status RpcRequest::feed(const char* data, size_t n, uint32_t max_bytes, size_t& used) {
  for (used = 0; used < n;) {
    const char c = data[used++];
    if (++length > kRpcLineMax) return Status::Refused;
    if (c == '\n') return end_of_input();
    if (cr) return Status::Refused;  // '\r' ends the digits; only '\n' may follow it
    if (c == '\r') {
      cr = true;
      continue;
    }
    if (c < '0' || c > '9') return Status::Refused;
    // reply <= max_bytes <= 2^30 before this digit: no overflow in 64 bits.
    const uint64_t next = uint64_t{reply} * 10 + static_cast<uint64_t>(c - '0');
    if (next > max_bytes) return Status::Refused;
    reply = static_cast<uint32_t>(next);
  }
  return Status::More;
}

RpcRequest::Status RpcRequest::end_of_input() const {
  // UNP: atol() of the line, and a size <= 0 refused: no digits, or only zeros, is 0.
  return reply > 0 ? Status::Ready : Status::Refused;
}

}  // namespace ps
