namespace LambdaService.Training.Methods;

/// <summary>
/// Holds λ inside a band <c>[min, max]</c> by adapting the CRR scale s: an integral controller on log s with a dead band,
/// bounded steps and an off state.
/// </summary>
/// <remarks>
/// With the band's centre c = (min + max)/2 and the dead band [lo, hi] = c ∓ deadband·(max − min)/2 (default: the middle half),
/// after each measurement λ_k:
/// <code>
/// e_k        = λ_k − hi   if λ_k &gt; hi;   λ_k − lo   if λ_k &lt; lo;   0 inside the dead band
/// log s_k+1  = log s_k + clamp(gain · e_k, −maxStep, +maxStep)
/// s_k+1      = 0 when it falls below minScale (the penalty is off); at most maxScale
/// </code>
/// and from s = 0 a λ above the dead band restarts the penalty at <c>minScale</c>. λ above the dead band raises the scale,
/// below lowers it, inside leaves it (with deadband 1 the dead band is the whole band); one update changes s by at most the factor <c>e^{maxStep}</c> (default e^{0.5} ≈ 1.65), so
/// the controller cannot make the scale jump. A non-finite λ (a measurement that failed) leaves s as it is and counts as
/// out of band.
/// </remarks>
public sealed class LambdaBandController
{
    /// <summary>Creates the controller; the band and every bound are checked (field names as in the request's <c>crr.target</c>).</summary>
    public LambdaBandController(CrrTargetSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        Settings = settings;
        Scale = settings.InitialScale < settings.MinScale ? 0 : settings.InitialScale;
    }

    /// <summary>The band and the controller's constants.</summary>
    public CrrTargetSettings Settings { get; }

    /// <summary>The scale in force.</summary>
    public double Scale { get; private set; }

    /// <summary>Measurements so far.</summary>
    public int Updates { get; private set; }

    /// <summary>Measurements inside the band so far.</summary>
    public int InBand { get; private set; }

    /// <summary>Fraction of the measurements inside the band (0 before the first).</summary>
    public double TimeInBand => Updates == 0 ? 0 : (double)InBand / Updates;

    /// <summary>Whether a λ lies inside the band (bounds included).</summary>
    public bool Contains(double lambda) => lambda >= Settings.Min && lambda <= Settings.Max;

    /// <summary>Takes one measurement and returns the scale in force from now on.</summary>
    public double Update(double lambda)
    {
        Updates++;
        if (!double.IsFinite(lambda)) return Scale;
        if (Contains(lambda)) InBand++;
        var centre = (Settings.Min + Settings.Max) / 2;
        var half = (Settings.Max - Settings.Min) / 2 * Settings.Deadband;
        var error = lambda > centre + half ? lambda - (centre + half) : lambda < centre - half ? lambda - (centre - half) : 0;
        if (error == 0) return Scale;
        var step = Math.Clamp(Settings.Gain * error, -Settings.MaxStep, Settings.MaxStep);
        if (Scale == 0)
        {
            if (error > 0) Scale = Settings.MinScale;
            return Scale;
        }
        var next = Scale * Math.Exp(step);
        Scale = next < Settings.MinScale ? 0 : Math.Min(next, Settings.MaxScale);
        return Scale;
    }
}
