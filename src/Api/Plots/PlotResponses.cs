using LambdaService.Api.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using LambdaService.Api.Contracts;

namespace LambdaService.Api.Plots;

/// <summary>The query parameters and responses shared by the <c>/plot</c> endpoints.</summary>
public static class PlotResponses
{
    /// <summary>Parses <c>format</c> (svg default, png) and <c>width</c>/<c>height</c>; a problem naming the field when one is out of range.</summary>
    public static ProblemHttpResult? TryParse(string? format, int? width, int? height, out PlotFormat plotFormat, out int w, out int h)
    {
        plotFormat = PlotFormat.Svg;
        w = width ?? PlotRenderer.DefaultWidth;
        h = height ?? PlotRenderer.DefaultHeight;
        if (format is not null && !ClosedSet.TryParse(format, out plotFormat))
        {
            return Problems.Field(400, "format", $"format '{format}' is not known; use {ClosedSet.Or(ClosedSet.Words<PlotFormat>())}.");
        }
        if (w is < PlotRenderer.MinSize or > PlotRenderer.MaxSize) return Problems.Field(400, "width", $"width must be between {PlotRenderer.MinSize} and {PlotRenderer.MaxSize} pixels.");
        if (h is < PlotRenderer.MinSize or > PlotRenderer.MaxSize) return Problems.Field(400, "height", $"height must be between {PlotRenderer.MinSize} and {PlotRenderer.MaxSize} pixels.");
        return null;
    }

    /// <summary>The rendered picture as a file response (<c>{name}.svg</c> or <c>.png</c>, shown inline).</summary>
    public static FileContentHttpResult File(byte[] bytes, PlotFormat format) =>
        TypedResults.File(bytes, PlotRenderer.ContentType(format));
}
