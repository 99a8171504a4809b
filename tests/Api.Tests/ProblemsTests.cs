using LambdaService.Api.Hosting;
using LambdaService.Measurement;

namespace LambdaService.Api.Tests;

public class ProblemsTests
{
    [Fact]
    public void A_measurement_input_error_with_its_own_title_keeps_it_in_the_synchronous_problem()
    {
        var problem = Problems.From(new MeasurementInputException("engine", "derivatives unreliable: …", title: "Derivatives unreliable")).ProblemDetails;
        Assert.Equal(400, problem.Status);
        Assert.Equal("Derivatives unreliable", problem.Title);
        Assert.Equal("engine", problem.Extensions["field"]);
    }

    [Fact]
    public void A_measurement_input_error_without_a_title_gets_the_status_title()
    {
        var problem = Problems.From(new MeasurementInputException("orders", "the lowest order is 0")).ProblemDetails;
        Assert.Equal("Invalid request", problem.Title);
        Assert.Equal("orders", problem.Extensions["field"]);
    }
}
