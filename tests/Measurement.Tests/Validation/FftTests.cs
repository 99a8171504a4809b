using System.Numerics;
using LambdaService.Measurement.Numerics;
using LambdaService.Measurement.Validation;

namespace LambdaService.Measurement.Tests.Validation;

public class FftTests
{
    [Fact]
    public void A_forward_then_inverse_transform_returns_the_input()
    {
        // Round-off of a radix-2 FFT is about ε·log₂N relative; 1e-13 absolute on values in [−1, 1] leaves a wide margin.
        var random = new Random(7);
        var data = new Complex[1024];
        for (var i = 0; i < data.Length; i++) data[i] = new Complex(2 * random.NextDouble() - 1, 2 * random.NextDouble() - 1);
        var copy = (Complex[])data.Clone();
        Fft.Forward(copy);
        Fft.Inverse(copy);
        for (var i = 0; i < data.Length; i++) Assert.True((copy[i] - data[i]).Magnitude < 1e-13, $"index {i}: {copy[i]} vs {data[i]}");
    }

    [Fact]
    public void The_forward_transform_of_a_pure_exponential_is_n_at_its_bin_and_zero_elsewhere()
    {
        // x_j = e^{2πi·3j/N} ⇒ X_m = Σ_j e^{2πi(3−m)j/N} = N·δ_{m,3} (hand-computed geometric sum); tolerance 1e-11.
        const int n = 64;
        var data = new Complex[n];
        for (var j = 0; j < n; j++) data[j] = Complex.FromPolarCoordinates(1, 2 * Math.PI * 3 * j / n);
        Fft.Forward(data);
        for (var m = 0; m < n; m++) Assert.True((data[m] - (m == 3 ? n : 0)).Magnitude < 1e-11, $"bin {m}: {data[m]}");
    }

    [Fact]
    public void A_length_that_is_not_a_power_of_two_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => Fft.Forward(new Complex[12]));
    }

    [Fact]
    public void The_spectral_derivative_of_sin_3x_is_3_cos_3x()
    {
        // d/dx sin 3x = 3 cos 3x, d²/dx² sin 3x = −9 sin 3x (closed form); tolerance 1e-10 absolute.
        const int n = 256;
        var samples = new double[n];
        for (var j = 0; j < n; j++) samples[j] = Math.Sin(3 * 2 * Math.PI * j / n);
        var d = new PeriodicSpectralDerivative(samples);
        var first = d.Derivative(1);
        var second = d.Derivative(2);
        for (var j = 0; j < n; j++)
        {
            var x = 2 * Math.PI * j / n;
            Assert.Equal(3 * Math.Cos(3 * x), first[j], 1e-10);
            Assert.Equal(-9 * Math.Sin(3 * x), second[j], 1e-10);
        }
    }

    [Fact]
    public void The_sixtieth_spectral_derivative_of_sin_x_is_sin_x_because_round_off_modes_are_dropped()
    {
        // d⁶⁰/dx⁶⁰ sin x = sin(x + 60·π/2) = sin x. Without the round-off floor, noise of 1e-16 in mode 1000 would be
        // amplified by 1000⁶⁰. Tolerance 1e-10 absolute.
        const int n = 2048;
        var samples = new double[n];
        for (var j = 0; j < n; j++) samples[j] = Math.Sin(2 * Math.PI * j / n);
        var d = new PeriodicSpectralDerivative(samples);
        var sixtieth = d.Derivative(60);
        for (var j = 0; j < n; j++) Assert.Equal(samples[j], sixtieth[j], 1e-10);
        Assert.Equal(n - 2, d.DroppedModes);
    }

    [Fact]
    public void The_grid_rms_of_bandlimited_derivatives_matches_parseval_up_to_order_60()
    {
        // Second computation: v_n² = ½ Σ_k a_k² k^{2n} (Parseval, exact for a trigonometric polynomial on N > 2Ω points),
        // summed as a log-sum-exp. Tolerance 1e-10 on log v_n (the FFT path carries about 1e-14).
        var signal = new BandlimitedSignal(450, k => 1.0 + 0.001 * k, seed: 3);
        var d = new PeriodicSpectralDerivative(signal.Sample(2048));
        for (var order = 0; order <= 60; order++)
            Assert.Equal(signal.ExactLogRms(order), d.LogRms(order), 1e-10);
    }

    [Fact]
    public void The_rms_of_huge_values_does_not_overflow()
    {
        // RMS of (3e200, 4e200) = sqrt((9 + 16)/2)·1e200 = 5/√2 · 1e200; relative tolerance 1e-15.
        var rms = PeriodicSpectralDerivative.Rms([3e200, 4e200]);
        Assert.Equal(1.0, rms / (5 / Math.Sqrt(2) * 1e200), 1e-15);
    }
}
