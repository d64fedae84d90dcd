// Hex and base64: the one copy every library uses.
#include "core/encoding.hpp"

#include <gtest/gtest.h>

namespace vigil::core {
namespace {

TEST(Encoding, HexBothWays) {
    const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff};
    EXPECT_EQ(hex(bytes, 4), "000fa0ff");
    EXPECT_EQ(hex_upper(bytes, 4, ':'), "00:0F:A0:FF");
    auto back = unhex("000fa0ff");
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, std::vector<unsigned char>(bytes, bytes + 4));
    EXPECT_FALSE(unhex("abc"));   // odd length
    EXPECT_FALSE(unhex("0G"));    // not hex
    EXPECT_FALSE(unhex("AB"));    // upper case is not what is stored
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Encoding, Base64WithPaddingOnly) {
    EXPECT_EQ(base64("user:pass"), "dXNlcjpwYXNz");
    EXPECT_EQ(base64("a"), "YQ==");
    EXPECT_EQ(base64_decode("YQ=="), std::optional<std::string>("a"));
    EXPECT_EQ(base64_decode("YWI="), std::optional<std::string>("ab"));
    EXPECT_EQ(base64_decode(base64(std::string("\0\x01\xff", 3))), std::optional<std::string>(std::string("\0\x01\xff", 3)));
    EXPECT_FALSE(base64_decode(""));
    EXPECT_FALSE(base64_decode("YQ"));     // not a multiple of 4
    EXPECT_FALSE(base64_decode("Y!==")); // not base64
}

}  // namespace
}  // namespace vigil::core
