#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "disque/resp/writer.h"

namespace disque::resp {
namespace {

using namespace std::string_literals;

class WriterTest : public testing::Test {
 protected:
  std::string out_;
  ReplyWriter writer_{out_};
};

TEST_F(WriterTest, Status) {
  writer_.Status("OK");
  writer_.Status("");
  EXPECT_EQ(out_, "+OK\r\n+\r\n");
}

TEST_F(WriterTest, Error) {
  writer_.Error("ERR syntax error");
  EXPECT_EQ(out_, "-ERR syntax error\r\n");
}

TEST_F(WriterTest, ErrorNewlinesBecomeSpaces) {
  writer_.Error("ERR a\r\nb\nc\rd\r");
  EXPECT_EQ(out_, "-ERR a  b c d \r\n");
}

TEST_F(WriterTest, ErrorReplacementLeavesEarlierRepliesAlone) {
  writer_.Bulk("x\r\ny");
  writer_.Error("ERR\n");
  EXPECT_EQ(out_, "$4\r\nx\r\ny\r\n-ERR \r\n");
}

TEST_F(WriterTest, Integer) {
  writer_.Integer(0);
  writer_.Integer(42);
  writer_.Integer(-1);
  writer_.Integer(-1234567);
  EXPECT_EQ(out_, ":0\r\n:42\r\n:-1\r\n:-1234567\r\n");
}

TEST_F(WriterTest, IntegerExtremes) {
  writer_.Integer(std::numeric_limits<int64_t>::min());
  writer_.Integer(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(out_, ":-9223372036854775808\r\n:9223372036854775807\r\n");
}

TEST_F(WriterTest, Bulk) {
  writer_.Bulk("hello");
  writer_.Bulk("");
  EXPECT_EQ(out_, "$5\r\nhello\r\n$0\r\n\r\n");
}

TEST_F(WriterTest, BulkIsBinarySafe) {
  writer_.Bulk("a\0\r\nb"s);
  EXPECT_EQ(out_, "$5\r\na\0\r\nb\r\n"s);
}

TEST_F(WriterTest, LargeBulk) {
  const std::string body(100000, 'q');
  writer_.Bulk(body);
  EXPECT_EQ(out_, "$100000\r\n" + body + "\r\n");
}

TEST_F(WriterTest, Nulls) {
  writer_.NullBulk();
  writer_.NullArray();
  EXPECT_EQ(out_, "$-1\r\n*-1\r\n");
}

TEST_F(WriterTest, ArrayOfReplies) {
  writer_.ArrayHeader(3);
  writer_.Bulk("D-1");
  writer_.Integer(7);
  writer_.ArrayHeader(0);
  EXPECT_EQ(out_, "*3\r\n$3\r\nD-1\r\n:7\r\n*0\r\n");
}

TEST_F(WriterTest, Raw) {
  writer_.Raw("+PONG\r\n");
  writer_.Raw("");
  writer_.Raw("\0x"s);
  EXPECT_EQ(out_, "+PONG\r\n\0x"s);
}

TEST_F(WriterTest, AppendsToExistingContent) {
  out_ = "pending";
  writer_.Status("OK");
  EXPECT_EQ(out_, "pending+OK\r\n");
  EXPECT_EQ(&writer_.buffer(), &out_);
}

}  // namespace
}  // namespace disque::resp

namespace disque::resp {
namespace {

// The in-place writers give exactly the bytes ReplyWriter appends, and their sizes.
TEST(InPlaceWriterTest, DecimalAtEveryLengthBoundary) {
  for (uint64_t v : {uint64_t{0}, uint64_t{9}, uint64_t{10}, uint64_t{99}, uint64_t{100}, uint64_t{999},
                     uint64_t{1000}, uint64_t{9999}, uint64_t{10000}, uint64_t{123456789},
                     std::numeric_limits<uint64_t>::max()}) {
    char buf[32];
    char* end = WriteDecimal(buf, v);
    EXPECT_EQ(std::string(buf, end), std::to_string(v));
    EXPECT_EQ(DecimalSize(v), std::to_string(v).size());
  }
}

TEST(InPlaceWriterTest, BulkAndArrayHeaderMatchReplyWriter) {
  for (size_t len : {size_t{0}, size_t{1}, size_t{9}, size_t{10}, size_t{40}, size_t{100}, size_t{1000},
                     size_t{12345}}) {
    const std::string s(len, 'x');
    std::string expected;
    ReplyWriter w(expected);
    w.ArrayHeader(len);
    w.Bulk(s);
    std::string got(ArrayHeaderSize(len) + BulkSize(len), '\0');
    char* end = WriteBulk(WriteArrayHeader(got.data(), len), s);
    EXPECT_EQ(end, got.data() + got.size());
    EXPECT_EQ(got, expected);
    std::string header(BulkHeaderSize(len), '\0');
    EXPECT_EQ(WriteBulkHeader(header.data(), len), header.data() + header.size());
    EXPECT_EQ(header, "$" + std::to_string(len) + "\r\n");
  }
}

}  // namespace
}  // namespace disque::resp
