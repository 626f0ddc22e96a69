def main():
    print("customers")
