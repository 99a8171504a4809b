using System.IO.Compression;
using System.Text;
using LambdaService.Measurement.Data;

namespace LambdaService.Measurement.Tests.Data;

public class CorruptionTests
{
    public static TheoryData<string, byte[]> ValidFiles => new()
    {
        { "x.npy", NpyBytes.Float64([3, 2], 1, 2, 3, 4, 5, 6) },
        { "x.npy", NpyBytes.Array("<f2", [2, 2], [0, 0x3C, 0, 0x40, 0, 0x42, 0, 0x44], fortranOrder: true) },
        { "d.npz", NpzBytes.Zip(("x.npy", NpyBytes.Float64([3, 2], 1, 2, 3, 4, 5, 6)), ("y.npy", NpyBytes.Array("|u1", [3], [0, 1, 2]))) },
        {
            "d.npz",
            NpzBytes.Zip(CompressionLevel.NoCompression, ("x.npy", NpyBytes.Float64([3, 2], 1, 2, 3, 4, 5, 6)), ("y.npy", NpyBytes.Array("|u1", [3], [0, 1, 2])))
        },
        { "d.csv", Encoding.UTF8.GetBytes("a,\"b\",label\n1,2,0\n3.5,-4e1,1\n") },
    };

    [Theory]
    [MemberData(nameof(ValidFiles))]
    public void Randomly_damaged_files_only_ever_fail_with_one_line_input_errors(string fileName, byte[] valid)
    {
        var random = new Random(12345);
        var options = new DataReadOptions { MaxDecompressedBytes = 1 << 16, MaxValues = 10_000 };
        for (var trial = 0; trial < 400; trial++)
        {
            var damaged = (byte[])valid.Clone();
            switch (trial % 3)
            {
                case 0:
                    for (var k = random.Next(1, 5); k > 0; k--) damaged[random.Next(damaged.Length)] = (byte)random.Next(256);
                    break;
                case 1:
                    damaged = damaged[..random.Next(damaged.Length)];
                    break;
                default:
                    damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
                    break;
            }

            try
            {
                DatasetReader.Read(new MemoryStream(damaged), fileName, options);
            }
            catch (MeasurementInputException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                Assert.DoesNotContain('\r', e.Message);
            }
        }
    }
}
